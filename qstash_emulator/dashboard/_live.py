"""Log rows pushed to open dashboards as they are written, one user's to each.

The hub listens to the store only while a dashboard is connected, so a server nobody watches
pays nothing. Rows go out a batch every ``_FLUSH_S`` in a slimmed shape (no headers or
bodies; the page asks the API for a message's detail). A page that falls more than
``_BACKLOG`` rows behind gets the newest ones and the number it missed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from ..store.core import Store

__all__ = ["LiveRows", "Subscriber"]

_BACKLOG = 500
_FLUSH_S = 0.25
_KEEPALIVE_S = 15.0
_KEPT = (
    "time",
    "messageId",
    "state",
    "url",
    "method",
    "responseStatus",
    "error",
    "nextDeliveryTime",
    "topicName",
    "queueName",
    "scheduleId",
)


class Subscriber:
    """One open dashboard: the rows it has not been sent yet."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.rows: deque[dict[str, Any]] = deque(maxlen=_BACKLOG)
        self.missed = 0
        self.ready = asyncio.Event()

    def push(self, row: dict[str, Any]) -> None:
        if len(self.rows) == _BACKLOG:
            self.missed += 1
        self.rows.append(row)
        self.ready.set()

    def take(self) -> dict[str, Any]:
        batch: dict[str, Any] = {"rows": list(self.rows)}
        if self.missed:
            batch["missed"] = self.missed
        self.rows.clear()
        self.missed = 0
        self.ready.clear()
        return batch


class LiveRows:
    """Fans the store's log rows out to the dashboards of their users."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._subscribers: dict[str, set[Subscriber]] = {}

    def subscribe(self, user: str) -> Subscriber:
        subscriber = Subscriber(user)
        if not self._subscribers:
            self.store.row_listeners.append(self._rows)
        self._subscribers.setdefault(user, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        mine = self._subscribers.get(subscriber.user)
        if mine is not None:
            mine.discard(subscriber)
            if not mine:
                del self._subscribers[subscriber.user]
        if not self._subscribers and self._rows in self.store.row_listeners:
            self.store.row_listeners.remove(self._rows)

    def _rows(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            watching = self._subscribers.get(row["_user"])
            if watching:
                slim = {k: row[k] for k in _KEPT if k in row}
                for subscriber in watching:
                    subscriber.push(slim)

    async def stream(self, subscriber: Subscriber) -> AsyncIterator[dict[str, Any]]:
        """Batches of rows for ``subscriber`` (an empty one now and then keeps it open)."""
        try:
            yield {"rows": []}
            while True:
                try:
                    await asyncio.wait_for(subscriber.ready.wait(), _KEEPALIVE_S)
                except TimeoutError:
                    yield {"rows": []}
                    continue
                await asyncio.sleep(_FLUSH_S)  # let a burst gather into one batch
                yield subscriber.take()
        finally:
            self.unsubscribe(subscriber)
