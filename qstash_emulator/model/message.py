"""The message: what is stored for each accepted publish, callback or scheduled run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .ids import choose
from .options import CallbackConfig

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
    # Read back after its grace began with its big body gone past --body-budget (never stored).
    body_dropped: bool = field(default=False, repr=False)
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


_RECORD_FIELDS = tuple(
    f.name for f in dataclasses.fields(Message) if f.name not in ("body", "body_dropped")
)
