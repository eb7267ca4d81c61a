"""Hearing how an app uses QStash: each accepted publish, schedule and workflow run becomes a
``Usage``, normalised as it is heard so that equal uses are stored once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import astuple, dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from ..model.destination import is_url
from ..model.message import Message
from ..model.options import OPTIONS, CallbackConfig, FlowControl, Keys, Option, PublishOptions
from ..server.runtime import Runtime
from ._normalise import REDACTED, is_secret, mask_url, mask_value, template, template_url

if TYPE_CHECKING:
    from ..server.emulator import Emulator
    from ..services.schedules import Schedule

__all__ = ["MAX_PER_ENTRY", "Recorder", "Usage"]

# Distinct uses kept per destination and method: a long-running dev server stays bounded.
MAX_PER_ENTRY = 1_000
# Workflow runs followed at once (their steps arrive one message at a time).
_MAX_RUNS = 10_000


@dataclass(frozen=True, order=True)
class Usage:
    """One distinct use of QStash, normalised: what a contract entry is built from."""

    kind: str  # "publish", "schedule" or "workflow"
    method: str
    destination: str  # the URL as a template, or a URL group's name
    url: str  # the URL, with run-to-run values masked
    headers: tuple[tuple[str, str], ...]  # forwarded, lower-case names, masked values
    body: str | None  # canonical JSON text when ``json``, else the text; None when empty
    json: bool
    options: str  # canonical JSON
    steps: tuple[str, ...] = ()  # a workflow run's steps, "Type name", in order
    test: str = ""  # the test that made it, under pytest

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.destination, self.method, self.kind)

    def wire(self) -> list[Any]:
        """Plain lists and strings (what pytest-xdist carries from a worker)."""
        return [list(v) if isinstance(v, tuple) else v for v in astuple(self)]

    @classmethod
    def from_wire(cls, items: list[Any]) -> Usage:
        values = list(items)
        values[4] = tuple(tuple(pair) for pair in values[4])
        values[8] = tuple(values[8])
        return cls(*values)


def _canonical(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _body(body: bytes) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return _canonical(mask_value(orjson.loads(body))), True
    except orjson.JSONDecodeError:
        return mask_value(body.decode("utf-8", "replace")), False


def _headers(header: dict[str, list[str]]) -> tuple[tuple[str, str], ...]:
    # Upstash-* headers are QStash's own (a workflow SDK forwards those of the delivery it
    # answers: message id, signature ...), not the app's.
    return tuple(
        sorted(
            (name.lower(), REDACTED if is_secret(name) else mask_value(", ".join(values)))
            for name, values in header.items()
            if not name.lower().startswith("upstash-")
        )
    )


def _callback(key: str) -> Keys:
    def keys(config: CallbackConfig | None) -> dict[str, Any]:
        if not config:
            return {}
        view: dict[str, Any] = {"url": template_url(config["url"])}
        if config["method"] != "POST":
            view["method"] = config["method"]
        given = {
            "retries": config["retries"],
            "retry_delay": config["retry_delay"],
            "timeout_ms": config["timeout_ms"],
        }
        view.update({name: value for name, value in given.items() if value is not None})
        if config["delay_ms"]:
            view["delay"] = True
        return {key: view}

    return keys


def _flow(flow: FlowControl | None) -> dict[str, Any]:
    if not flow:
        return {}
    limits = {"parallelism": flow["parallelism"], "rate": flow["rate"], "period": flow["period"]}
    return {
        "flow_control": {
            "key": template(flow["key"]),
            **{k: v for k, v in limits.items() if v is not None},
        }
    }


def _sorted(key: str, each: Callable[[str], str] = str) -> Keys:
    return lambda values: {key: sorted(each(v) for v in values)} if values else {}


# How a contract shows an option where not as ``{field: value}`` once it differs from its
# default (as a new option is shown): by a key or a shape of its own, ids as ``{id}``, or,
# where None, not among the options (method and forwarded headers are a use's own keys, a
# run's headers make a workflow entry, a schedule's id is the emulator's, a not-before time
# is a delay).
_SHOWN: dict[str, Keys | None] = {
    "method": None,
    "header": None,
    "workflow": None,
    "schedule_id": None,
    "not_before_ms": None,
    "delay_ms": lambda ms: {"delay": True} if ms > 0 else {},
    "dedup_id": lambda key: {"deduplication": "id"} if key is not None else {},
    "content_dedup": lambda on: {"deduplication": "content"} if on else {},
    "callback": _callback("callback"),
    "failure_callback": _callback("failure_callback"),
    "queue_name": lambda name: {"queue": template(name)} if name else {},
    "labels": _sorted("labels", template),
    "redact": _sorted("redact"),
    "flow": _flow,
}
_DEFAULT = PublishOptions()


def _as_given(o: Option) -> Keys:
    default = getattr(_DEFAULT, o.name)
    return lambda value: {o.name: value} if value != default else {}


# Each option's keys in a contract, in the options model's order.
_CONTRACT: tuple[tuple[str, Keys], ...] = tuple(
    (o.name, keys)
    for o in OPTIONS
    if (keys := _SHOWN[o.name] if o.name in _SHOWN else _as_given(o)) is not None
)


def _options(opts: PublishOptions, used: dict[str, Any], url_group: str | None) -> str:
    """The options of one use (``opts``, with the values ``used`` holds of its own),
    canonical; an option left unset is left out."""
    view: dict[str, Any] = {}
    for name, keys in _CONTRACT:
        view.update(keys(used[name] if name in used else getattr(opts, name)))
    if url_group:
        view["url_group"] = template(url_group)
    return _canonical(view)


def _step(body: bytes) -> tuple[int, str] | None:
    """A workflow step message's id and "Type name", or None for a run's first message."""
    try:
        step = orjson.loads(body) if body[:1] == b"{" else None
    except orjson.JSONDecodeError:
        return None
    if isinstance(step, dict) and "stepName" in step and "stepType" in step:
        number = step.get("stepId")
        name = template(str(step["stepName"]))
        return (number if isinstance(number, int) else 0, f"{step['stepType']} {name}")
    return None


class Recorder:
    """Collects the distinct uses of one or more emulators; ``usages()`` is what was heard."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usages: dict[tuple[str, str, str], set[Usage]] = {}
        self._tests: dict[str, str] = {}
        # Workflow runs under way: (user, run id) -> the run's first use and its steps so far.
        self._runs: dict[tuple[str, str], tuple[Usage, set[tuple[int, str]]]] = {}
        self._default_retries = 3

    def attach(self, target: Emulator | Runtime) -> None:
        """Hear every message ``target`` accepts and every schedule it creates."""
        runtime = target if isinstance(target, Runtime) else target.runtime
        self._default_retries = runtime.settings.default_retries
        runtime.publisher.stored.append(self._stored)
        runtime.schedules.created.append(self._schedule)

    def detach(self, target: Emulator | Runtime) -> None:
        """Stop hearing ``target``."""
        runtime = target if isinstance(target, Runtime) else target.runtime
        runtime.publisher.stored.remove(self._stored)
        runtime.schedules.created.remove(self._schedule)

    def bind(self, user_id: str, test: str) -> None:
        """What ``user_id`` publishes from now on is ``test``'s use."""
        with self._lock:
            self._tests[user_id] = test

    def add(self, usage: Usage) -> None:
        with self._lock:
            kept = self._usages.setdefault(usage.key, set())
            if len(kept) < MAX_PER_ENTRY:
                kept.add(usage)

    def usages(self) -> list[Usage]:
        """Every distinct use heard so far, workflow runs with the steps they took."""
        with self._lock:
            found = {u for kept in self._usages.values() for u in kept}
            runs = [(first, sorted(steps)) for first, steps in self._runs.values()]
        for first, steps in runs:
            ordered = tuple(name for _, name in steps)
            found.add(replace(first, steps=ordered))
        return sorted(found)

    async def _stored(self, messages: list[Message]) -> None:
        for msg in messages:
            if msg.kind != "message" or msg.schedule_id is not None:
                continue  # the schedule is the use, not each run of it
            if msg.run_id is not None:
                self._workflow(msg)
            else:
                self.add(self._usage("publish", msg))

    def _usage(self, kind: str, msg: Message) -> Usage:
        body, is_json = _body(msg.body)
        # What the message holds of its publish beside its options: the resolved retries,
        # the delay (until its not-before time), its queue and deduplication.
        key = msg.dedup_key
        used = {
            "retries": msg.max_retries,
            "delay_ms": msg.not_before - msg.created_at,
            "queue_name": msg.queue_name,
            "dedup_id": None if key is None or _by_content(key) else key,
            "content_dedup": key is not None and _by_content(key),
        }
        options = _options(msg.options, used, msg.topic_name)
        return Usage(
            kind,
            msg.options.method,
            template_url(msg.url),
            mask_url(msg.url),
            _headers(msg.options.header),
            body,
            is_json,
            options,
            test=self._tests.get(msg.user, ""),
        )

    def _workflow(self, msg: Message) -> None:
        assert msg.run_id is not None
        key = (msg.user, msg.run_id)
        step = _step(msg.body)
        with self._lock:
            run = self._runs.get(key)
            if run is None and step is None and len(self._runs) < _MAX_RUNS:
                self._runs[key] = (self._usage("workflow", msg), set())
            elif run is not None and step is not None:
                run[1].add(step)

    def _schedule(self, sched: Schedule) -> None:
        opts: PublishOptions = sched.opts
        body, is_json = _body(sched.body)
        url = is_url(sched.destination)
        used = {
            "retries": self._default_retries if opts.retries is None else opts.retries,
            "cron": sched.cron,
        }
        options = _options(opts, used, None if url else sched.destination)
        self.add(
            Usage(
                "schedule",
                opts.method,
                template_url(sched.destination) if url else template(sched.destination),
                mask_url(sched.destination) if url else sched.destination,
                _headers(opts.header),
                body,
                is_json,
                options,
                test=self._tests.get(sched.user, ""),
            )
        )


def _by_content(dedup_key: str) -> bool:
    return dedup_key.startswith("content:")
