"""The plan's daily message counts in the store: one counter a user and day."""

from __future__ import annotations

from typing import Any

from .keyspace import Keyspace

__all__ = ["QuotaStore"]

# A day's counter outlives its day, so a count read at midnight is still there.
_KEEP_S = 2 * 86_400


class QuotaStore:
    """Reads and writes of the daily counters (``store.quotas``)."""

    def __init__(self, redis: Any, keyspace: Keyspace) -> None:
        self._redis = redis
        self._keyspace = keyspace

    async def used(self, user: str, day: str) -> int:
        raw = await self._redis.get(self._keyspace.daily(user, day))
        return int(raw) if raw is not None else 0

    async def add(self, user: str, day: str, count: int) -> int:
        """Count ``count`` more messages on ``day``; the day's total after them."""
        key = self._keyspace.daily(user, day)
        used = int(await self._redis.incrby(key, count))
        if used == count:
            await self._redis.expire(key, _KEEP_S)
        return used

    async def take_back(self, user: str, day: str, count: int) -> None:
        """Undo an ``add`` that went past the limit."""
        await self._redis.decrby(self._keyspace.daily(user, day), count)
