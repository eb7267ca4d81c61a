"""The message: what is stored for each accepted publish, callback or scheduled run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .ids import choose
from .options import FlowControl, PublishOptions

__all__ = [
    "FINAL_STATES",
    "DeadLetter",
    "Kind",
    "LogState",
    "Message",
    "State",
    "new_id",
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
    # What its publish configured that it keeps (PublishOptions.for_message): method,
    # forwarded headers, retries (resolved), retry delay, timeout, labels, callbacks ...
    options: PublishOptions = field(default_factory=PublishOptions)
    body: bytes = field(default=b"", repr=False)
    retried: int = 0
    state: LogState = State.CREATED
    due: int = 0
    final_at: int | None = None
    dedup_key: str | None = None
    topic_name: str | None = None
    endpoint_name: str | None = None
    queue_name: str | None = None
    schedule_id: str | None = None
    caller_ip: str = ""
    kind: Kind = "message"
    source_message_id: str | None = None
    dlq_id: str | None = None
    # Read back after its grace began with its big body gone past --body-budget (never stored).
    body_dropped: bool = field(default=False, repr=False)
    # A message of an Upstash Workflow run: the run (id and creation time, since an id can be
    # used again once its run ended) and how the run records it.
    run_id: str | None = None
    run_created_at: int | None = None
    call_type: str | None = None

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt (resolved when the message was made)."""
        return self.options.retries or 0

    @property
    def flow_key(self) -> str | None:
        """The flow-control key it is delivered under, if any."""
        flow = self.options.flow
        return flow["key"] if flow is not None else None

    def record(self) -> dict[str, Any]:
        """Everything but the body, for storage as JSON: its options as one sub-object."""
        # Unset fields are left out (from_record restores their defaults): records are smaller.
        record: dict[str, Any] = {}
        for name in _RECORD_FIELDS:
            value = getattr(self, name)
            if value is not None and value != [] and value != {}:
                record[name] = value
        record["options"] = self.options.record()
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any], body: bytes) -> Message:
        """The message a record holds (one an older emulator wrote too: see _upgraded)."""
        options = record.pop("options", None)
        if options is None:
            options = _upgraded(record)
        return cls(**record, options=PublishOptions(**options), body=body)


def _upgraded(record: dict[str, Any]) -> dict[str, Any]:
    """The options of a record written before they were one sub-object (key layout 2), taken
    out of ``record``: a fixed list, which a new option never needs to join."""
    options = {
        new: record.pop(old)
        for old, new in (
            ("method", "method"),
            ("header", "header"),
            ("max_retries", "retries"),
            ("timeout_ms", "timeout_ms"),
            ("retry_delay", "retry_delay"),
            ("callback", "callback"),
            ("failure_callback", "failure_callback"),
            ("labels", "labels"),
            ("redact", "redact"),
        )
        if old in record
    }
    flow = [record.pop(name, None) for name in ("flow_key", "flow_parallelism", "flow_rate")]
    period = record.pop("flow_period", None)
    if flow[0] is not None:
        options["flow"] = FlowControl(
            key=flow[0], parallelism=flow[1], rate=flow[2], period=period or 1
        )
    return options


@dataclass(frozen=True)
class DeadLetter:
    """A message that failed for good, with the last answer it got (its ``status``,
    ``header``, ``body`` and ``error``)."""

    dlq_id: str
    message: Message
    response: dict[str, Any]


_RECORD_FIELDS = tuple(
    f.name for f in dataclasses.fields(Message) if f.name not in ("options", "body", "body_dropped")
)
