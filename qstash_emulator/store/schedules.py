"""Schedules in the store: each one's record and body, a user's list, and the shared index of
run times that the engine's timer reads."""

from __future__ import annotations

from typing import Any

from .. import _json
from .group_commit import Batcher, Writes
from .keyspace import Keyspace

__all__ = ["ScheduleStore"]

_SEP = "\x00"


class ScheduleStore:
    """Reads and writes of schedules (``store.schedules``)."""

    def __init__(self, redis: Any, keyspace: Keyspace, batch: Batcher) -> None:
        self._redis = redis
        self._batch = batch
        self._keyspace = keyspace
        self._due = keyspace.schedule_due

    async def get(self, user: str, schedule_id: str) -> tuple[dict[str, Any], bytes] | None:
        """The schedule's record and body."""
        record, body = await self._redis.hmget(
            self._keyspace.schedule(user, schedule_id), ["r", "b"]
        )
        return None if record is None else (_json.loads(record), body or b"")

    async def ids(self, user: str) -> list[str]:
        """The user's schedules, oldest first."""
        found = await self._redis.zrange(self._keyspace.schedules(user), 0, -1)
        return [i.decode() for i in found]

    async def count(self, user: str) -> int:
        return int(await self._redis.zcard(self._keyspace.schedules(user)))

    async def put(
        self,
        user: str,
        schedule_id: str,
        created_at: int,
        record: dict[str, Any],
        body: bytes,
        next_time: int | None,
    ) -> None:
        """Write a schedule; ``next_time`` None takes it off the run times (paused)."""
        key, data = self._keyspace.schedule(user, schedule_id), _json.dumps(record)
        member = user + _SEP + schedule_id

        def fill(w: Writes) -> None:
            w.pipe.hset(key, mapping={"r": data, "b": body})
            w.zadd(self._keyspace.schedules(user), schedule_id, created_at)
            if next_time is None:
                w.zrem(self._due, member)
            else:
                w.zadd(self._due, member, next_time)

        await self._batch.run(fill)

    async def remove(self, user: str, schedule_id: str) -> bool:
        """Forget a schedule; False when there was none."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._keyspace.schedule(user, schedule_id))
        pipe.zrem(self._keyspace.schedules(user), schedule_id)
        pipe.zrem(self._due, user + _SEP + schedule_id)
        deleted, _, _ = await pipe.execute()
        return bool(deleted)

    async def next_time(self) -> int | None:
        """The earliest run time of any user's schedule."""
        first = await self._redis.zrange(self._due, 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    async def due(self, now_ms: int, limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` of the schedules due by ``now_ms`` (earliest first), as (user,
        schedule id)."""
        found = await self._redis.zrangebyscore(self._due, "-inf", now_ms, start=0, num=limit)
        out = []
        for raw in found:
            user, _, schedule_id = raw.decode().partition(_SEP)
            out.append((user, schedule_id))
        return out

    async def purge(self, user: str) -> None:
        """Take the user's schedules off the run times (their keys go with the user's)."""
        members = [user + _SEP + schedule_id for schedule_id in await self.ids(user)]
        if members:
            await self._redis.zrem(self._due, *members)

    async def not_due(self, user: str, schedule_id: str) -> None:
        """Take a schedule off the run times (it is gone or paused)."""
        await self._redis.zrem(self._due, user + _SEP + schedule_id)
