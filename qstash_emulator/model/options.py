"""The options model: what a publish's headers configure, shared by messages, schedules and
workflow runs. Each option is one PublishOptions field, which says itself (``option(...)``) the
header that sets it, whether a message keeps it, its keys in each JSON view and whether a
workflow run keeps it from its trigger.

A message (``Message.options``) and a run (``Run.options``) hold their options as one
PublishOptions, stored as one sub-object of their record; a schedule stores the options it
publishes with. A new header is its name (model/names.py), its parse rule (model/headers.py,
``RULES``, which the OpenAPI document lists) and its field here: every copy (a publish, a
dead-letter retry, a run's later messages, resume and restart) and every view (message, log
row, DLQ entry, schedule, run log) follows the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Literal, NotRequired, TypedDict

from .names import H

__all__ = [
    "KEPT",
    "OPTIONS",
    "RUN",
    "CallbackConfig",
    "FlowControl",
    "Option",
    "PublishOptions",
    "RunHeaders",
    "View",
    "named",
    "option_view",
]


class RunHeaders(TypedDict):
    """The Upstash Workflow headers of one message: which run it belongs to, and how."""

    run_id: str
    init: bool
    url: str | None
    call_type: str  # one of _CALL_TYPES
    invoke: bool
    features: list[str]
    by_sdk: bool  # the SDK's own start of a run the trigger API created for an unknown SDK


class CallbackConfig(TypedDict):
    url: str
    method: str
    timeout_ms: int | None
    retries: int | None
    retry_delay: str | None
    delay_ms: int
    header: dict[str, list[str]]
    # The prefix rule: Upstash-Callback-X is header Upstash-X of the callback message, so
    # Workflow headers, flow control and a failure callback of its own can be given too.
    workflow: NotRequired[RunHeaders]
    flow: NotRequired[FlowControl]
    failure_callback: NotRequired[CallbackConfig]


class FlowControl(TypedDict):
    key: str
    parallelism: int | None
    rate: int | None
    period: int


# Which JSON view an option renders in: a message's (and its log rows' and DLQ entries'), a
# schedule's or a workflow run's log. They differ on purpose, as production's do: a schedule
# shows its delay, and its timeout in seconds where a message shows it in ms; a run shows its
# flow-control key only.
View = Literal["message", "schedule", "run"]
Keys = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Option:
    """One publish option: its header, its PublishOptions field, and what follows it (views
    without an entry show it elsewhere, or not at all)."""

    header: str  # lower case, as H names it
    name: str  # the PublishOptions field
    # Whether a message keeps it in its options (those that act at publish, a delay or a
    # deduplication id, it does not), and a dead-letter retry's header sets it again.
    kept: bool = True
    views: dict[View, Keys] = field(default_factory=dict)
    # Whether a workflow run keeps it from its trigger for its later messages (newer SDKs send
    # it with the trigger only): creation, a step's inheritance, resume and restart copy it.
    run: bool = False


def option(
    header: str,
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    kept: bool = True,
    views: dict[View, Keys] | None = None,
    run: bool = False,
) -> Any:
    """A PublishOptions field that is the option set by ``header`` (see ``Option``)."""
    spec = {"header": header, "kept": kept, "views": views or {}, "run": run}
    if factory is not None:
        return field(default_factory=factory, metadata={"option": spec})
    return field(default=default, metadata={"option": spec})


def _if(key: str) -> Keys:
    return lambda value: {key: value} if value else {}


def _seconds(key: str) -> Keys:
    return lambda value: {key: value // 1_000} if value and value // 1_000 else {}


def _labels(labels: list[str]) -> dict[str, Any]:
    return {"label": labels[0], "labels": labels} if labels else {}


def _flow(flow: FlowControl | None) -> dict[str, Any]:
    if not flow:
        return {}
    out: dict[str, Any] = {"flowControlKey": flow["key"]}
    if flow["parallelism"] is not None:
        out["parallelism"] = flow["parallelism"]
    if flow["rate"] is not None:
        out["rate"] = flow["rate"]
    out["period"] = flow["period"] or 1
    return out


def _callback(key: str) -> Keys:
    def keys(config: CallbackConfig | None) -> dict[str, Any]:
        if not config:
            return {}
        out: dict[str, Any] = {key: config["url"]}
        if config["header"]:
            out[key + "Header"] = config["header"]
        return out

    return keys


def _both(keys: Keys) -> dict[View, Keys]:
    return {"message": keys, "schedule": keys}


def _every(keys: Keys) -> dict[View, Keys]:
    return {"message": keys, "schedule": keys, "run": keys}


def _flow_key(flow: FlowControl | None) -> dict[str, Any]:
    return {"flowControlKey": flow["key"]} if flow else {}


@dataclass
class PublishOptions:
    """Publish headers after validation; what a message is built from, and what it keeps.

    The fields' order is the order of their keys in each view. Method, forwarded headers and
    retries are every view's own keys; redaction acts on the header and body keys; a
    message's delay and not-before are its notBefore, its queue its own queueName key."""

    method: str = option(H.METHOD, "POST")
    delay_ms: int = option(H.DELAY, 0, kept=False, views={"schedule": _seconds("delay")})
    not_before_ms: int | None = option(H.NOT_BEFORE, None, kept=False)
    # On a message: resolved (the default when the publish gave none), never None.
    retries: int | None = option(H.RETRIES, None, run=True)
    retry_delay: str | None = option(
        H.RETRY_DELAY, None, views=_both(_if("retryDelayExpression")), run=True
    )
    labels: list[str] = option(H.LABEL, factory=list, views=_every(_labels), run=True)
    redact: list[str] = option(H.REDACT, factory=list, run=True)
    flow: FlowControl | None = option(
        H.FLOW_KEY, None, views={"message": _flow, "schedule": _flow, "run": _flow_key}, run=True
    )
    dedup_id: str | None = option(H.DEDUP_ID, None, kept=False)
    content_dedup: bool = option(H.CONTENT_DEDUP, False, kept=False)
    callback: CallbackConfig | None = option(H.CALLBACK, None, views=_both(_callback("callback")))
    failure_callback: CallbackConfig | None = option(
        H.FAILURE_CALLBACK, None, views=_both(_callback("failureCallback")), run=True
    )
    header: dict[str, list[str]] = option(H.FORWARD, factory=dict)
    timeout_ms: int | None = option(
        H.TIMEOUT, None, views={"message": _if("timeout"), "schedule": _seconds("timeout")}
    )
    # A schedule's options: the queue it publishes through, its cron and id.
    queue_name: str | None = option(
        H.QUEUE_NAME, None, kept=False, views={"schedule": _if("queueName")}
    )
    cron: str | None = option(H.CRON, None, kept=False)
    schedule_id: str | None = option(H.SCHEDULE_ID, None, kept=False)
    # A message of a workflow run keeps its run id and call type as fields of its own.
    workflow: RunHeaders | None = option(H.RUN_ID, None, kept=False)

    def due(self, now: int) -> int:
        """When the first attempt is due: Upstash-Not-Before, else now plus Upstash-Delay."""
        return self.not_before_ms if self.not_before_ms is not None else now + self.delay_ms

    def dedup_key(self, destination: str, body: bytes) -> str | None:
        """The id that makes two publishes duplicates, if deduplication was asked for."""
        if self.dedup_id is not None:
            return self.dedup_id
        if not self.content_dedup:
            return None
        digest = hashlib.sha256(destination.encode())
        digest.update(b"\0" + body + b"\0")
        for name in sorted(self.header):
            digest.update(f"{name}:{','.join(self.header[name])}\n".encode())
        return "content:" + digest.hexdigest()

    def for_message(self, default_retries: int) -> PublishOptions:
        """The options a message keeps of these (the others act at publish), with its
        retries resolved."""
        kept = PublishOptions(**{name: getattr(self, name) for name in KEPT})
        if kept.retries is None:
            kept.retries = default_retries
        return kept

    def taking(self, source: PublishOptions, names: Iterable[str]) -> PublishOptions:
        """A copy with the options ``names`` as ``source`` has them."""
        return replace(self, **{name: getattr(source, name) for name in names})

    def filled(self, source: PublishOptions, names: Iterable[str]) -> PublishOptions:
        """A copy where the options ``names`` that are unset here are ``source``'s."""
        unset = {name: getattr(source, name) for name in names if getattr(self, name) in _UNSET}
        return replace(self, **unset) if unset else self

    def record(self) -> dict[str, Any]:
        """The options that differ from their defaults, for storage as JSON."""
        return {
            name: value for name, default in _DEFAULTS if (value := getattr(self, name)) != default
        }


OPTIONS: tuple[Option, ...] = tuple(
    Option(name=f.name, **f.metadata["option"]) for f in fields(PublishOptions)
)
# The options a message keeps, and those a workflow run keeps from its trigger.
KEPT: tuple[str, ...] = tuple(o.name for o in OPTIONS if o.kept)
RUN: tuple[str, ...] = tuple(o.name for o in OPTIONS if o.run)
_DEFAULTS = tuple(
    (f.name, f.default_factory() if f.default_factory is not MISSING else f.default)
    for f in fields(PublishOptions)
)
_UNSET: tuple[Any, ...] = (None, "", [])


def named(given: Collection[str], among: Iterable[str] = KEPT) -> list[str]:
    """The options (of ``among``) whose header is among ``given``, lower-case header names
    (any ``Upstash-Forward-*`` names the forwarded headers)."""
    headers = set(given)
    if any(name.startswith(H.FORWARD) for name in headers):
        headers.add(H.FORWARD)
    wanted = set(among)
    return [o.name for o in OPTIONS if o.name in wanted and o.header in headers]


def option_view(opts: PublishOptions, view: View) -> dict[str, Any]:
    """The keys ``opts`` add to a ``view``, in the fields' order."""
    out: dict[str, Any] = {}
    for name, keys in _VIEWS[view]:
        out.update(keys(getattr(opts, name)))
    return out


_VIEWS: dict[View, tuple[tuple[str, Keys], ...]] = {
    view: tuple((o.name, o.views[view]) for o in OPTIONS if view in o.views)
    for view in ("message", "schedule", "run")
}
