"""The options model: what a publish's headers configure, shared by messages, schedules and
workflow runs, with the one table that says, per option, the header that sets it, the message
fields it becomes and the keys it shows in a JSON view.

A new option is its name (model/names.py), its parse rule (model/headers.py), its field and row
here, and the Message field (a Run field too when a run keeps it) the row names; every copy (a
publish, a dead-letter retry, a run's later messages) and every view (message, log row, DLQ
entry, schedule, run log) follows the row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

from .names import H

__all__ = [
    "OPTIONS",
    "CallbackConfig",
    "FlowControl",
    "Option",
    "PublishOptions",
    "RunHeaders",
    "View",
    "flow_fields",
    "option_fields",
    "option_view",
    "options_of",
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


@dataclass
class PublishOptions:
    """Publish headers after validation; what a message is built from."""

    method: str = "POST"
    header: dict[str, list[str]] = field(default_factory=dict)
    delay_ms: int = 0
    not_before_ms: int | None = None
    retries: int | None = None
    retry_delay: str | None = None
    timeout_ms: int | None = None
    dedup_id: str | None = None
    content_dedup: bool = False
    labels: list[str] = field(default_factory=list)
    redact: list[str] = field(default_factory=list)
    flow: FlowControl | None = None
    callback: CallbackConfig | None = None
    failure_callback: CallbackConfig | None = None
    queue_name: str | None = None
    cron: str | None = None
    schedule_id: str | None = None
    workflow: RunHeaders | None = None

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


# Which JSON view an option renders in: a message's (and its log rows' and DLQ entries'), a
# schedule's or a workflow run's log. They differ on purpose, as production's do: a schedule
# shows its delay, and its timeout in seconds where a message shows it in ms; a run shows its
# flow-control key only.
View = Literal["message", "schedule", "run"]
Keys = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Option:
    """One publish option: its header, its PublishOptions field, the message fields it sets
    and its keys in each view (views without an entry show it elsewhere, or not at all)."""

    header: str  # lower case, as H names it
    name: str  # the PublishOptions field
    fields: tuple[str, ...] = ()  # the Message fields it sets (none: it acts at publish)
    views: dict[View, Keys] = field(default_factory=dict)
    # Whether a dead-letter retry's header sets it again (a run's messages keep their run).
    on_retry: bool = True
    # Whether a workflow run keeps it from its trigger for its later messages (newer SDKs send
    # it with the trigger only): creation, a step's inheritance, resume and restart copy it.
    run: bool = False
    # An option held in several message fields: how its value becomes them, and back.
    split: Callable[[Any], dict[str, Any]] | None = None
    join: Callable[[Any], Any] | None = None

    def message_fields(self, value: Any) -> dict[str, Any]:
        """The message fields for the option's ``value``."""
        return self.split(value) if self.split else {self.fields[0]: value}

    def of_message(self, msg: Any) -> Any:
        """The option's value as a message holds it."""
        return self.join(msg) if self.join else getattr(msg, self.fields[0])


def _flow_of(msg: Any) -> FlowControl | None:
    if not msg.flow_key:
        return None
    return FlowControl(
        key=msg.flow_key,
        parallelism=msg.flow_parallelism,
        rate=msg.flow_rate,
        period=msg.flow_period or 1,
    )


def _run_fields(run: RunHeaders | None) -> dict[str, Any]:
    return {
        "run_id": run["run_id"] if run else None,
        "call_type": run["call_type"] if run else None,
    }


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


def _flow_key(flow: FlowControl | None) -> dict[str, Any]:
    return {"flowControlKey": flow["key"]} if flow else {}


# Method, forwarded headers and retries are every view's own keys; redaction acts on the header
# and body keys; a message's delay and not-before are its notBefore.
OPTIONS: tuple[Option, ...] = (
    Option(H.METHOD, "method", ("method",)),
    Option(H.DELAY, "delay_ms", views={"schedule": _seconds("delay")}),
    Option(H.NOT_BEFORE, "not_before_ms"),
    Option(H.RETRIES, "retries", ("max_retries",), run=True),
    Option(
        H.RETRY_DELAY, "retry_delay", ("retry_delay",), _both(_if("retryDelayExpression")), run=True
    ),
    Option(
        H.LABEL,
        "labels",
        ("labels",),
        {"message": _labels, "schedule": _labels, "run": _labels},
        run=True,
    ),
    Option(H.REDACT, "redact", ("redact",), run=True),
    Option(
        H.FLOW_KEY,
        "flow",
        ("flow_key", "flow_parallelism", "flow_rate", "flow_period"),
        {"message": _flow, "schedule": _flow, "run": _flow_key},
        run=True,
        split=lambda flow: flow_fields(flow),
        join=_flow_of,
    ),
    Option(H.DEDUP_ID, "dedup_id"),
    Option(H.CONTENT_DEDUP, "content_dedup"),
    Option(H.CALLBACK, "callback", ("callback",), _both(_callback("callback"))),
    Option(
        H.FAILURE_CALLBACK,
        "failure_callback",
        ("failure_callback",),
        _both(_callback("failureCallback")),
        run=True,
    ),
    Option(H.FORWARD, "header", ("header",)),
    Option(
        H.TIMEOUT,
        "timeout_ms",
        ("timeout_ms",),
        {"message": _if("timeout"), "schedule": _seconds("timeout")},
    ),
    # A message's queue is where it was published to (its own queueName key); a schedule's is
    # an option.
    Option(H.QUEUE_NAME, "queue_name", views={"schedule": _if("queueName")}),
    Option(H.CRON, "cron"),
    Option(H.SCHEDULE_ID, "schedule_id"),
    Option(H.RUN_ID, "workflow", ("run_id", "call_type"), on_retry=False, split=_run_fields),
)


def option_fields(
    opts: PublishOptions, default_retries: int, given: Collection[str] | None = None
) -> dict[str, Any]:
    """The message fields ``opts`` set: all of them for a new message; with ``given`` (the
    lower-case header names of a dead-letter retry) only those its headers set."""
    named: set[str] | None = None
    if given is not None:
        named = set(given) | ({H.FORWARD} if any(g.startswith(H.FORWARD) for g in given) else set())
    fields: dict[str, Any] = {}
    for option in OPTIONS:
        if option.fields and (named is None or (option.on_retry and option.header in named)):
            fields.update(option.message_fields(getattr(opts, option.name)))
    if named is None and fields["max_retries"] is None:
        fields["max_retries"] = default_retries
    return fields


def flow_fields(flow: FlowControl | None) -> dict[str, Any]:
    """A message's flow-control fields for ``flow`` (all None without one)."""
    return {
        "flow_key": flow["key"] if flow else None,
        "flow_parallelism": flow["parallelism"] if flow else None,
        "flow_rate": flow["rate"] if flow else None,
        "flow_period": flow["period"] if flow else None,
    }


def options_of(msg: Any) -> PublishOptions:
    """The options a message holds (those it keeps as fields and can give back; the rest at
    their defaults)."""
    return PublishOptions(
        **{
            option.name: option.of_message(msg)
            for option in OPTIONS
            if option.join or len(option.fields) == 1
        }
    )


def option_view(opts: PublishOptions, view: View) -> dict[str, Any]:
    """The keys ``opts`` add to a ``view``, in the table's order."""
    out: dict[str, Any] = {}
    for option in OPTIONS:
        if (keys := option.views.get(view)) is not None:
            out.update(keys(getattr(opts, option.name)))
    return out
