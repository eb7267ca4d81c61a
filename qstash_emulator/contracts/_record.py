"""Hearing how an app uses QStash: each accepted publish, schedule and workflow run becomes a
``Usage``, normalised as it is heard so that equal uses are stored once."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import astuple, dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from ..model.destination import is_url
from ..model.message import Message
from ..model.options import CallbackConfig, PublishOptions
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


def _callback(config: CallbackConfig | None) -> dict[str, Any] | None:
    if not config:
        return None
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
    return view


def _options(
    *,
    retries: int,
    delayed: bool,
    retry_delay: str | None,
    timeout_ms: int | None,
    callback: CallbackConfig | None,
    failure_callback: CallbackConfig | None,
    queue: str | None,
    group: str | None,
    flow: dict[str, Any] | None,
    dedup: str | None,
    labels: Iterable[str],
    redact: Iterable[str],
    cron: str | None = None,
) -> str:
    """The options of one use, canonical; an option left unset is left out."""
    view: dict[str, Any] = {
        "retries": retries,
        "delay": delayed or None,
        "retry_delay": retry_delay,
        "timeout_ms": timeout_ms,
        "callback": _callback(callback),
        "failure_callback": _callback(failure_callback),
        "queue": template(queue) if queue else None,
        "url_group": template(group) if group else None,
        "deduplication": dedup,
        "labels": sorted(template(label) for label in labels) or None,
        "redact": sorted(redact) or None,
        "cron": cron,
    }
    if flow:
        limits = {
            "parallelism": flow["parallelism"],
            "rate": flow["rate"],
            "period": flow["period"],
        }
        view["flow_control"] = {
            "key": template(flow["key"]),
            **{k: v for k, v in limits.items() if v is not None},
        }
    return _canonical({k: v for k, v in view.items() if v is not None})


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
        options = _options(
            retries=msg.max_retries,
            delayed=msg.not_before > msg.created_at,
            retry_delay=msg.options.retry_delay,
            timeout_ms=msg.options.timeout_ms,
            callback=msg.options.callback,
            failure_callback=msg.options.failure_callback,
            queue=msg.queue_name,
            group=msg.topic_name,
            flow=_flow(msg),
            dedup=None if msg.dedup_key is None else _dedup(msg.dedup_key),
            labels=msg.options.labels,
            redact=msg.options.redact,
        )
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
        options = _options(
            retries=self._default_retries if opts.retries is None else opts.retries,
            delayed=opts.delay_ms > 0,
            retry_delay=opts.retry_delay,
            timeout_ms=opts.timeout_ms,
            callback=opts.callback,
            failure_callback=opts.failure_callback,
            queue=opts.queue_name,
            group=None if url else sched.destination,
            flow=dict(opts.flow) if opts.flow else None,
            dedup=None,
            labels=opts.labels,
            redact=opts.redact,
            cron=sched.cron,
        )
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


def _flow(msg: Message) -> dict[str, Any] | None:
    flow = msg.options.flow
    return dict(flow) if flow is not None else None


def _dedup(key: str) -> str:
    return "content" if key.startswith("content:") else "id"
