"""Messages by id: reading one, and cancelling one or many (docs/behaviour.md#messages)."""

from __future__ import annotations

from collections.abc import Iterable

from .._errors import NotFound
from ..delivery.clock import Clock
from ..delivery.engine import Engine
from ..model.filters import Filter
from ..model.message import Message
from ..model.views import message_view
from ..server.config import Settings
from ..store.core import Store

__all__ = ["Messages"]


class Messages:
    """The messages of each user as ``/v2/messages`` shows them: readable until their grace
    period after the final state is over; cancellable until then."""

    def __init__(self, store: Store, settings: Settings, clock: Clock, engine: Engine) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.engine = engine

    async def get(self, user: str, message_id: str) -> Message:
        """The user's message, or 404 once it is gone or past its grace period."""
        msg = await self.store.get(message_id)
        if msg is None or msg.user != user:
            raise NotFound(f"message {message_id!r} not found")
        grace = int(self.settings.message_grace_s * 1_000)
        if msg.final_at is not None and msg.final_at + grace < self.clock.now_ms():
            raise NotFound(f"message {message_id!r} not found")
        return msg

    async def cancel(self, user: str, message_id: str) -> None:
        """Cancel one message; 404 saying why when there is nothing left to cancel. One in
        flight has its attempt ended."""
        msg = await self.get(user, message_id)
        if not await self.engine.cancel(msg):
            already = "being cancelled" if msg.id in self.engine.cancel_requested else msg.state
            raise NotFound(f"message {msg.id!r} not found: it is already {already}")

    async def cancel_many(
        self, user: str, ids: Iterable[str], flt: Filter | None = None, limit: int | None = None
    ) -> int:
        """Cancel the messages with these ids, or without ids every message not final that
        ``flt`` keeps (at most ``limit``); how many were cancelled."""
        wanted = list(ids)
        candidates = wanted or await self.store.pending_ids(user)
        cancelled = 0
        with self.engine.holding(candidates):
            for message_id in candidates:
                if limit is not None and cancelled >= limit:
                    break
                msg = await self.store.get(message_id)
                if msg is None or msg.user != user:
                    continue
                if not wanted and flt is not None and not flt.empty:
                    if not flt.matches(message_view(msg)):
                        continue
                if await self.engine.cancel(msg):
                    cancelled += 1
        return cancelled
