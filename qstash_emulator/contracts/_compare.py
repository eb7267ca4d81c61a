"""How this run's use of QStash differs from a committed contract, in words a reviewer reads:
what was added, removed or changed, field by field, and which tests sent it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ._document import entry_key, label
from ._record import Usage

__all__ = ["compare"]

_SHOWN_TESTS = 3


def _show(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _tests(usages: Iterable[Usage]) -> str:
    names = sorted({u.test for u in usages if u.test})
    if not names:
        return ""
    more = f" and {len(names) - _SHOWN_TESTS} more" if len(names) > _SHOWN_TESTS else ""
    return ", sent by " + ", ".join(names[:_SHOWN_TESTS]) + more


def _types(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(_types(s) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _fields(schema: dict[str, Any], path: str = "") -> dict[str, tuple[str, bool]]:
    """Each field of a JSON body's schema: its path (``items[].sku``), types, and whether
    every body had it."""
    found: dict[str, tuple[str, bool]] = {}
    schemas = schema.get("anyOf", [schema])
    for sub in schemas:
        required = set(sub.get("required", []))
        for name, child in sub.get("properties", {}).items():
            where = f"{path}.{name}" if path else name
            found[where] = (_types(child), name in required)
            found.update(_fields(child, where))
        if isinstance(sub.get("items"), dict):
            found.update(_fields(sub["items"], f"{path}[]"))
    return found


def _body_changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    if old == new:
        return []
    if old is None or new is None or old.get("format") != new.get("format"):
        was = old.get("format") if old else "no body"
        now = new.get("format") if new else "no body"
        return [f"body: {was} -> {now}"]
    if "schema" not in old or "schema" not in new:
        return []
    before, after = _fields(old["schema"]), _fields(new["schema"])
    lines = []
    if _types(old["schema"]) != _types(new["schema"]):
        lines.append(f"body: {_types(old['schema'])} -> {_types(new['schema'])}")
    for name in sorted(before.keys() - after.keys()):
        lines.append(f"body field {name!r} removed")
    for name in sorted(after.keys() - before.keys()):
        kind, required = after[name]
        lines.append(f"body field {name!r} added ({kind}{', in every body' if required else ''})")
    for name in sorted(before.keys() & after.keys()):
        (old_kind, old_req), (new_kind, new_req) = before[name], after[name]
        if old_kind != new_kind:
            lines.append(f"body field {name!r}: {old_kind} -> {new_kind}")
        if old_req != new_req:
            lines.append(
                f"body field {name!r} is {'now in every body' if new_req else 'now optional'}"
            )
    return lines


def _refused(schema: dict[str, Any], usages: list[Usage]) -> list[str]:
    """The first test whose body the committed schema refuses, with jsonschema's reason."""
    from jsonschema import exceptions, validators

    validator = validators.validator_for(schema)(schema)
    for usage in sorted(usages, key=lambda u: (u.test, u.body or "")):
        if not usage.json or usage.body is None:
            continue
        error = exceptions.best_match(validator.iter_errors(orjson.loads(usage.body)))
        if error is not None:
            path = "".join(f"[{p!r}]" for p in error.absolute_path)
            where = f" at {path}" if path else ""
            sender = usage.test or "a publish"
            return [f"{sender} sent a body the contract refuses{where}: {error.message}"]
    return []


def _dict_changes(what: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines = [f"{what} {name!r} removed" for name in sorted(old.keys() - new.keys())]
    lines += [f"{what} {name!r} added" for name in sorted(new.keys() - old.keys())]
    lines += [
        f"{what} {name!r}: {_show(old[name])} -> {_show(new[name])}"
        for name in sorted(old.keys() & new.keys())
        if old[name] != new[name]
    ]
    return lines


def _list_changes(what: str, old: list[Any], new: list[Any]) -> list[str]:
    gone = [v for v in old if v not in new]
    came = [v for v in new if v not in old]
    return [f"{what} no longer used: {_show(v)}" for v in gone] + [
        f"{what} new: {_show(v)}" for v in came
    ]


def _changes(old: dict[str, Any], new: dict[str, Any], usages: list[Usage]) -> list[str]:
    lines = _dict_changes("header", old.get("headers", {}), new.get("headers", {}))
    lines += _body_changes(old.get("body"), new.get("body"))
    if lines and old.get("body") and "schema" in old["body"]:
        lines += _refused(old["body"]["schema"], usages)
    lines += _list_changes("options", old.get("options", []), new.get("options", []))
    lines += _list_changes("steps", old.get("steps", []), new.get("steps", []))
    if not lines and old.get("exemplar") != new.get("exemplar"):
        lines += _dict_changes("exemplar", old.get("exemplar", {}), new.get("exemplar", {}))
    return lines or ["the entry differs from the file's (edited by hand?)"]


def compare(
    committed: dict[str, Any], current: dict[str, Any], usages: Iterable[Usage]
) -> list[str]:
    """What differs, one line each (empty when the run matches the contract)."""
    old = {entry_key(e): e for e in committed["entries"]}
    new = {entry_key(e): e for e in current["entries"]}
    by_key: dict[tuple[str, str, str], list[Usage]] = {}
    for usage in usages:
        by_key.setdefault(usage.key, []).append(usage)
    lines: list[str] = []
    for key in sorted(old.keys() | new.keys()):
        sent = by_key.get(key, [])
        if key not in new:
            lines.append(f"removed: {label(old[key])}: no test of this run sent it")
        elif key not in old:
            lines.append(f"added: {label(new[key])}{_tests(sent)}")
        elif old[key] != new[key]:
            lines.append(f"changed: {label(new[key])}{_tests(sent)}")
            lines += [f"  {line}" for line in _changes(old[key], new[key], sent)]
    return lines
