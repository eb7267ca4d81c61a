"""Flow control in the store: each user's keys (config and rate window, JSON), each key's wait
list, and the shared index of keys with waiters (``flow-wake``). See ``services.flow_control`` for
what the scores mean."""

from __future__ import annotations

from typing import Any

from .. import _json
from .group_commit import Batcher, Writes
from .keyspace import Keyspace

__all__ = ["PARKED", "FlowControlStore"]

# The score of a key whose waiters only an event can release (a slot, a resume): past any time.
PARKED = float(2**53)
_SEP = "\x00"

State = dict[str, Any]


class FlowControlStore:
    """Reads and writes of flow-control keys (``store.flow_control``)."""

    def __init__(self, redis: Any, keyspace: Keyspace, batch: Batcher) -> None:
        self._redis = redis
        self._batch = batch
        self._keyspace = keyspace
        self._wake = keyspace.flow_wake

    # Keys ----------------------------------------------------------------------------------

    async def get(self, user: str, key: str) -> State | None:
        raw = await self._redis.hget(self._keyspace.flow(user), key)
        return None if raw is None else dict(_json.loads(raw))

    async def get_with_waiting(self, user: str, key: str) -> tuple[State | None, int]:
        """The key's state and the length of its wait list, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(self._keyspace.flow(user), key)
        pipe.llen(self._keyspace.flow_wait(user, key))
        raw, waiting = await pipe.execute()
        return (None if raw is None else dict(_json.loads(raw))), int(waiting)

    async def put(self, user: str, key: str, state: State) -> None:
        await self._redis.hset(self._keyspace.flow(user), key, _json.dumps(state))

    async def all(self, user: str) -> dict[str, State]:
        raw = await self._redis.hgetall(self._keyspace.flow(user))
        return {k.decode(): _json.loads(v) for k, v in raw.items()}

    # Wait lists ----------------------------------------------------------------------------

    async def waiting(self, user: str, key: str) -> int:
        return int(await self._redis.llen(self._keyspace.flow_wait(user, key)))

    async def wait(self, user: str, key: str, message_id: str) -> None:
        """The message joins the tail of the key's wait list."""
        await self._redis.rpush(self._keyspace.flow_wait(user, key), message_id)

    async def unwait(self, user: str, key: str, message_id: str) -> bool:
        """The message leaves the wait list; False when it was not on it."""
        return bool(await self._redis.lrem(self._keyspace.flow_wait(user, key), 0, message_id))

    async def next_waiter(self, user: str, key: str) -> str | None:
        """Take the head of the wait list."""
        raw = await self._redis.lpop(self._keyspace.flow_wait(user, key))
        return None if raw is None else str(raw.decode())

    # The wake-up index ---------------------------------------------------------------------

    async def unwake(self, user: str, key: str) -> int:
        """Take the key off the index; the length of its wait list, in the same round trip."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.llen(self._keyspace.flow_wait(user, key))
        pipe.zrem(self._wake, user + _SEP + key)
        waiting, _ = await pipe.execute()
        return int(waiting)

    async def wake_at(self, user: str, key: str, at: float | None) -> None:
        """Look at the key again at ``at`` (ms), on an event (``PARKED``), or never (None)."""
        member = user + _SEP + key
        if at is None:
            await self._redis.zrem(self._wake, member)
        else:
            await self._batch.run(lambda w: w.zadd(self._wake, member, at))

    async def next_wake(self) -> int | None:
        """The earliest time a key is to be looked at again (parked keys aside)."""
        first = await self._redis.zrangebyscore(
            self._wake, "-inf", f"({PARKED:.0f}", start=0, num=1, withscores=True
        )
        return int(first[0][1]) if first else None

    async def due(self, now_ms: int) -> list[tuple[str, str]]:
        """The keys to look at by ``now_ms``, as (user, key)."""
        found = await self._redis.zrangebyscore(self._wake, "-inf", now_ms)
        out = []
        for raw in found:
            user, _, key = raw.decode().partition(_SEP)
            out.append((user, key))
        return out

    async def purge(self, user: str) -> None:
        """Take the user's keys off the shared index."""
        head = self._keyspace.literal(user + _SEP) + "*"
        found = [m async for m in self._redis.zscan_iter(self._wake, match=head, count=1_000)]
        if found:
            await self._redis.zrem(self._wake, *(member for member, _ in found))

    async def wake_all(self) -> None:
        """Every key with waiters is to be looked at now (after a restart)."""
        members = [m.decode() for m in await self._redis.zrange(self._wake, 0, -1)]

        def fill(w: Writes) -> None:
            for member in members:
                w.zadd(self._wake, member, 0)

        if members:
            await self._batch.run(fill)
