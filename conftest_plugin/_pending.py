"""``PendingMessage``: what ``qstash.messages()`` returns, a message not final yet."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from qstash_emulator.testing import Kind, Waiting, WaitingState

__all__ = ["PendingMessage"]


@dataclass(frozen=True)
class PendingMessage:
    """A message still to be delivered, and when it is next due."""

    message_id: str
    state: WaitingState  # "pending", "delayed", "retrying", "in_flight" or "queued"
    due: int | None  # Unix ms on the emulator's clock; None while in flight or held by a queue
    url: str
    method: str
    kind: Kind  # "message", "callback" or "failure_callback"
    retried: int
    max_retries: int
    queue_name: str | None
    schedule_id: str | None
    headers: dict[str, str]
    body: bytes = field(repr=False)  # as published; text decodes it, json() parses it
    description: str = field(repr=False)

    @classmethod
    def of(cls, waiting: Waiting, now_ms: int) -> PendingMessage:
        msg = waiting.message
        return cls(
            message_id=msg.id,
            state=waiting.state,
            due=waiting.due,
            url=msg.url,
            method=msg.options.method,
            kind=msg.kind,
            retried=msg.retried,
            max_retries=msg.max_retries,
            queue_name=msg.queue_name,
            schedule_id=msg.schedule_id,
            headers={name: ", ".join(values) for name, values in msg.options.header.items()},
            body=msg.body,
            description=waiting.describe(now_ms),
        )

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> object:
        return orjson.loads(self.body)

    def describe(self) -> str:
        """One line, as the teardown checks list it (due times relative to when it was read)."""
        return self.description
