"""The contract file: entries built from uses, written sorted so that it diffs cleanly.

One entry per destination, method and kind (publish, schedule, workflow): the forwarded
headers (a value where every use sent the same one), the body's JSON Schema inferred by
genson from every body seen, the distinct option sets, a workflow's step sequences, and an
exemplar (the smallest use, so that the choice does not depend on test order) to replay.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from ._record import Usage

__all__ = ["VERSION", "ContractError", "build", "dumps", "entry_key", "label", "load", "loads"]

VERSION = 1


class ContractError(ValueError):
    """A contract file that cannot be read."""


def _sorted(value: Any) -> Any:
    """``value`` with every mapping's keys in order, and schema keyword lists canonical."""
    if isinstance(value, dict):
        out = {key: _sorted(value[key]) for key in sorted(value)}
        for keyword in ("required", "type"):
            if isinstance(out.get(keyword), list):
                out[keyword] = sorted(out[keyword])
        if isinstance(out.get("anyOf"), list):
            out["anyOf"] = sorted(out["anyOf"], key=lambda s: orjson.dumps(s))
        return out
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _schema(bodies: list[str]) -> dict[str, Any]:
    from genson import SchemaBuilder

    builder = SchemaBuilder(schema_uri=None)
    for body in bodies:
        builder.add_object(orjson.loads(body))
    schema: dict[str, Any] = _sorted(builder.to_schema())
    return schema


def _entry(usages: list[Usage]) -> dict[str, Any]:
    first = usages[0]
    values: dict[str, set[str]] = {}
    for usage in usages:
        for name, value in usage.headers:
            values.setdefault(name, set()).add(value)
    headers = {
        name: next(iter(seen)) if len(seen) == 1 else None for name, seen in sorted(values.items())
    }
    bodies = sorted({u.body for u in usages if u.body is not None})
    body: dict[str, Any] | None = None
    if bodies and all(u.json for u in usages if u.body is not None):
        body = {"format": "json", "schema": _schema(bodies)}
    elif bodies:
        body = {"format": "text"}
    example = min(usages, key=lambda u: (u.url, u.headers, u.body or "", u.options))
    entry: dict[str, Any] = {
        "kind": first.kind,
        "method": first.method,
        "destination": first.destination,
        "headers": headers,
        "body": body,
        "options": [_sorted(orjson.loads(o)) for o in sorted({u.options for u in usages})],
    }
    if first.kind == "workflow":
        entry["steps"] = [list(s) for s in sorted({u.steps for u in usages})]
    entry["exemplar"] = {
        "url": example.url,
        "headers": dict(example.headers),
        "body": (orjson.loads(example.body) if example.json else example.body)
        if example.body is not None
        else None,
    }
    return entry


def build(usages: Iterable[Usage]) -> dict[str, Any]:
    """The contract document for ``usages`` (in any order: the result is the same)."""
    groups: dict[tuple[str, str, str], list[Usage]] = {}
    for usage in sorted(set(usages)):
        groups.setdefault(usage.key, []).append(usage)
    return {"qstash_contract": VERSION, "entries": [_entry(groups[k]) for k in sorted(groups)]}


def entry_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (entry["destination"], entry["method"], entry["kind"])


def label(entry: dict[str, Any]) -> str:
    """How messages name an entry: ``POST https://x/orders/{id} (publish)``."""
    return f"{entry['method']} {entry['destination']} ({entry['kind']})"


def dumps(document: dict[str, Any]) -> bytes:
    """The file's bytes: two-space indents, a final newline."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def loads(data: bytes, source: str = "contract") -> dict[str, Any]:
    """A contract document, checked enough to be compared and replayed."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"{source}: not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("qstash_contract") != VERSION:
        raise ContractError(f"{source}: not a qstash contract (version {VERSION})")
    entries = document.get("entries")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and {"kind", "method", "destination", "exemplar"} <= e.keys()
        for e in entries
    ):
        raise ContractError(f"{source}: 'entries' must be a list of contract entries")
    return document


def load(path: str | Path) -> dict[str, Any]:
    """Read a contract file."""
    return loads(Path(path).read_bytes(), str(path))
