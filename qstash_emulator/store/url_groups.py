"""URL groups in the store: one hash a user, group name -> the group as JSON."""

from __future__ import annotations

from typing import Any

from .. import _json
from .keyspace import Keyspace

__all__ = ["UrlGroupStore"]

Group = dict[str, Any]


class UrlGroupStore:
    """Reads and writes of URL groups (``store.url_groups``)."""

    def __init__(self, redis: Any, keyspace: Keyspace) -> None:
        self._redis = redis
        self._keyspace = keyspace

    async def get(self, user: str, name: str) -> Group | None:
        raw = await self._redis.hget(self._keyspace.groups(user), name)
        return None if raw is None else dict(_json.loads(raw))

    async def put(self, user: str, name: str, group: Group) -> None:
        await self._redis.hset(self._keyspace.groups(user), name, _json.dumps(group))

    async def remove(self, user: str, name: str) -> None:
        await self._redis.hdel(self._keyspace.groups(user), name)

    async def count(self, user: str) -> int:
        return int(await self._redis.hlen(self._keyspace.groups(user)))

    async def all(self, user: str) -> dict[str, Group]:
        raw = await self._redis.hgetall(self._keyspace.groups(user))
        return {k.decode(): _json.loads(v) for k, v in raw.items()}
