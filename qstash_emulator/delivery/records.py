"""Delivery attempts as the engine saw them, for tests to inspect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import _json
from ..model.message import Kind
from .retry import Outcome

__all__ = ["Attempt", "AttemptRequest", "AttemptResponse"]


class _Body:
    """A body the byte budget may drop: then empty, with ``body_dropped`` set."""

    body: bytes
    body_dropped: bool

    def drop_body(self) -> int:
        """Forget the body (docs/behaviour.md#memory); how many bytes that freed."""
        freed = len(self.body)
        if freed:
            self.body, self.body_dropped = b"", True
        return freed


@dataclass
class AttemptRequest(_Body):
    """The request as the destination received it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    body_dropped: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not)."""
        return _json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A header, by case-insensitive name."""
        lower = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lower:
                return value
        return None


@dataclass
class AttemptResponse(_Body):
    status: int
    headers: dict[str, list[str]]
    body: bytes
    body_dropped: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: request, response or error, and what was decided next."""

    message_id: str
    user: str
    kind: Kind
    retried: int
    max_retries: int
    request: AttemptRequest
    response: AttemptResponse | None
    error: str | None
    outcome: Outcome
    reason: str
    next_delay_ms: int | None
    delay_source: str | None
    started_at: int  # emulator clock, ms
    finished_at: int
    wall_started: float  # time.time()
    wall_finished: float
    source_message_id: str | None = None
    schedule_id: str | None = None
    topic_name: str | None = None
    queue_name: str | None = None
    labels: tuple[str, ...] = field(default_factory=tuple)

    @property
    def url(self) -> str:
        return self.request.url

    @property
    def status(self) -> int | None:
        return self.response.status if self.response else None
