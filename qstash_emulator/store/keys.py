"""The users' signing keys in the store, once rotated: one hash a user."""

from __future__ import annotations

from typing import Any

from .keyspace import Keyspace

__all__ = ["KeyStore"]


class KeyStore:
    """Reads and writes of the rotated signing keys (``store.keys``)."""

    def __init__(self, redis: Any, keyspace: Keyspace) -> None:
        self._redis = redis
        self._keyspace = keyspace

    async def get(self, user: str) -> tuple[str, str] | None:
        """The user's (current, next) keys, or None if they were never rotated."""
        key = self._keyspace.signing_keys(user)
        current, nxt = await self._redis.hmget(key, ["current", "next"])
        if current is None or nxt is None:
            return None
        return current.decode(), nxt.decode()

    async def set(self, user: str, current: str, nxt: str) -> None:
        await self._redis.hset(
            self._keyspace.signing_keys(user), mapping={"current": current, "next": nxt}
        )
