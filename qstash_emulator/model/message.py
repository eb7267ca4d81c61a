"""The message: what is stored for each accepted publish, callback or scheduled run."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .headers import CallbackConfig, FlowControl, H, PublishOptions
from .ids import choose

__all__ = [
    "FINAL_STATES",
    "DeadLetter",
    "Kind",
    "LogState",
    "Message",
    "State",
    "flow_fields",
    "new_id",
    "option_fields",
]

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def new_id(prefix: str, length: int = 22) -> str:
    return prefix + choose(_ALPHABET, length)


# What a message is: one published, or a callback or failure callback another one caused.
Kind = Literal["message", "callback", "failure_callback"]
LogState = Literal[
    "CREATED",
    "ACTIVE",
    "RETRY",
    "ERROR",
    "DELIVERED",
    "FAILED",
    "CANCEL_REQUESTED",
    "CANCELED",
    "IN_PROGRESS",
]


class State:
    """Log states (docs/behaviour.md#logs): ``CANCELED`` is the spelling every SDK parses."""

    CREATED: Final = "CREATED"
    ACTIVE: Final = "ACTIVE"
    RETRY: Final = "RETRY"
    ERROR: Final = "ERROR"
    DELIVERED: Final = "DELIVERED"
    FAILED: Final = "FAILED"
    CANCEL_REQUESTED: Final = "CANCEL_REQUESTED"
    CANCELED: Final = "CANCELED"
    IN_PROGRESS: Final = "IN_PROGRESS"


FINAL_STATES: frozenset[LogState] = frozenset({State.DELIVERED, State.FAILED, State.CANCELED})


@dataclass
class Message:
    """One unit of delivery. Callbacks are messages too, with ``kind`` set."""

    id: str
    user: str
    url: str
    created_at: int
    not_before: int
    max_retries: int
    method: str = "POST"
    header: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = field(default=b"", repr=False)
    retried: int = 0
    state: LogState = State.CREATED
    due: int = 0
    final_at: int | None = None
    timeout_ms: int | None = None
    retry_delay: str | None = None
    callback: CallbackConfig | None = None
    failure_callback: CallbackConfig | None = None
    dedup_key: str | None = None
    labels: list[str] = field(default_factory=list)
    redact: list[str] = field(default_factory=list)
    topic_name: str | None = None
    endpoint_name: str | None = None
    queue_name: str | None = None
    schedule_id: str | None = None
    caller_ip: str = ""
    flow_key: str | None = None
    flow_parallelism: int | None = None
    flow_rate: int | None = None
    flow_period: int | None = None
    kind: Kind = "message"
    source_message_id: str | None = None
    dlq_id: str | None = None
    # A message of an Upstash Workflow run: the run (id and creation time, since an id can be
    # used again once its run ended) and how the run records it.
    run_id: str | None = None
    run_created_at: int | None = None
    call_type: str | None = None

    def record(self) -> dict[str, Any]:
        """Everything but the body, for storage as JSON."""
        # Unset fields are left out (from_record restores their defaults): records are smaller.
        record = {}
        for name in _RECORD_FIELDS:
            value = getattr(self, name)
            if value is not None and value != [] and value != {}:
                record[name] = value
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any], body: bytes) -> Message:
        return cls(**record, body=body)


@dataclass(frozen=True)
class DeadLetter:
    """A message that failed for good, with the last answer it got (its ``status``,
    ``header``, ``body`` and ``error``)."""

    dlq_id: str
    message: Message
    response: dict[str, Any]


# The message field each publish option sets as it is, and the header that gives it: a publish
# sets them all, a dead-letter retry those its own headers name. (header, field, option)
# Flow control, which sets four fields, is Upstash-Flow-Control-Key's (flow_fields).
_OPTION_FIELDS = (
    (H.METHOD, "method", "method"),
    (H.RETRIES, "max_retries", "retries"),
    (H.RETRY_DELAY, "retry_delay", "retry_delay"),
    (H.TIMEOUT, "timeout_ms", "timeout_ms"),
    (H.CALLBACK, "callback", "callback"),
    (H.FAILURE_CALLBACK, "failure_callback", "failure_callback"),
    (H.FORWARD, "header", "header"),
    (H.LABEL, "labels", "labels"),
    (H.REDACT, "redact", "redact"),
)


def option_fields(
    opts: PublishOptions, default_retries: int, given: Collection[str] | None = None
) -> dict[str, Any]:
    """The message fields ``opts`` set: all of them for a new message; with ``given`` (the
    lower-case header names of a dead-letter retry) only those its headers set."""
    named: set[str] | None = None
    if given is not None:
        named = set(given) | ({H.FORWARD} if any(g.startswith(H.FORWARD) for g in given) else set())
    fields = {
        field: getattr(opts, option)
        for h, field, option in _OPTION_FIELDS
        if named is None or h in named
    }
    if named is None or H.FLOW_KEY in named:
        fields.update(flow_fields(opts.flow))
    if named is not None:
        return fields
    if fields["max_retries"] is None:
        fields["max_retries"] = default_retries
    run = opts.workflow
    fields.update(
        run_id=run["run_id"] if run else None,
        call_type=run["call_type"] if run else None,
    )
    return fields


def flow_fields(flow: FlowControl | None) -> dict[str, Any]:
    """A message's flow-control fields for ``flow`` (all None without one)."""
    return {
        "flow_key": flow["key"] if flow else None,
        "flow_parallelism": flow["parallelism"] if flow else None,
        "flow_rate": flow["rate"] if flow else None,
        "flow_period": flow["period"] if flow else None,
    }


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Message) if f.name != "body")
