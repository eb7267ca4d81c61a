"""Queues in the store: each user's queue configs, and per queue the line of its messages
(``members``, ``ready``), the slots in use (``active``) and the callbacks a slot waits for
(``hold``); plus the shared index of delayed members (``qwake``). See ``services.queues``
for the rules these keys carry out."""

from __future__ import annotations

from typing import Any, Literal

from redis.exceptions import WatchError

from .. import _json
from .group_commit import Batcher, Writes
from .keyspace import Keyspace, QueuePart

__all__ = ["QueueStore"]

Config = dict[str, Any]
# Optimistic transactions retried at most this often (each retry means another write won).
_TRIES = 1_000


class QueueStore:
    """Reads and writes of queues (``store.queues``)."""

    def __init__(self, redis: Any, keyspace: Keyspace, batch: Batcher) -> None:
        self._redis = redis
        self._batch = batch
        self._keyspace = keyspace
        self._wake = keyspace.queue_wake

    def _k(self, user: str, queue: str, part: QueuePart) -> str:
        return self._keyspace.queue(user, queue, part)

    @staticmethod
    def _wake_member(user: str, queue: str, message_id: str) -> bytes:
        return _json.dumps([user, queue, message_id])

    # Configs -------------------------------------------------------------------------------

    async def config(self, user: str, queue: str) -> Config | None:
        raw = await self._redis.hget(self._keyspace.queues(user), queue)
        return None if raw is None else dict(_json.loads(raw))

    async def put_config(self, user: str, queue: str, config: Config) -> None:
        await self._redis.hset(self._keyspace.queues(user), queue, _json.dumps(config))

    async def add_config(self, user: str, queue: str, config: Config) -> None:
        """Write ``config`` unless the queue has one already."""
        await self._redis.hsetnx(self._keyspace.queues(user), queue, _json.dumps(config))

    async def create(
        self, user: str, queue: str, config: Config, limit: int
    ) -> Literal["created", "exists"] | int:
        """Write ``config`` if the queue has none and the user has fewer than ``limit``
        queues, in one step with the count (concurrent creations cannot both pass it).

        An int is a refusal: the user's count of queues."""
        key = self._keyspace.queues(user)
        for _ in range(_TRIES):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)  # another write to the user's queues: try again
                    if await pipe.hexists(key, queue):
                        return "exists"
                    count = int(await pipe.hlen(key))
                    if count >= limit:
                        return count
                    pipe.multi()
                    pipe.hset(key, queue, _json.dumps(config))
                    await pipe.execute()
                    return "created"
                except WatchError:
                    continue
        raise RuntimeError(f"queue {queue!r} not created: {_TRIES} conflicting writes")

    async def delete_if_empty(self, user: str, queue: str) -> None:
        """Forget a queue no message joined (its creator's publish was refused)."""
        key, members = self._keyspace.queues(user), self._k(user, queue, "members")
        for _ in range(_TRIES):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key, members)
                    if await pipe.zcard(members):
                        return
                    pipe.multi()
                    pipe.hdel(key, queue)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def exists(self, user: str, queue: str) -> bool:
        return bool(await self._redis.hexists(self._keyspace.queues(user), queue))

    async def count(self, user: str) -> int:
        return int(await self._redis.hlen(self._keyspace.queues(user)))

    async def configs(self, user: str) -> dict[str, Config]:
        raw = await self._redis.hgetall(self._keyspace.queues(user))
        return {k.decode(): _json.loads(v) for k, v in raw.items()}

    async def all_queues(self) -> set[tuple[str, str]]:
        """Every user's queues, as (user, queue)."""
        found: set[tuple[str, str]] = set()
        keyspace = self._keyspace
        async for key in self._redis.scan_iter(match=keyspace.all_queue_configs(), count=1_000):
            user = keyspace.user_of_queue_configs(key.decode())
            for name in await self._redis.hkeys(key):
                found.add((user, name.decode()))
        return found

    async def delete(self, user: str, queue: str) -> list[str]:
        """Forget the queue and its messages that hold no slot; returns those messages."""
        members = [
            m.decode() for m in await self._redis.zrange(self._k(user, queue, "members"), 0, -1)
        ]
        active = {m.decode() for m in await self._redis.smembers(self._k(user, queue, "active"))}
        waiting = [m for m in members if m not in active]
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._keyspace.queues(user), queue)
        pipe.delete(self._k(user, queue, "ready"))
        if waiting:
            pipe.zrem(self._k(user, queue, "members"), *waiting)
            pipe.zrem(self._wake, *(self._wake_member(user, queue, m) for m in waiting))
        await pipe.execute()
        return waiting

    # The line ------------------------------------------------------------------------------

    async def lag(self, user: str, queue: str) -> int:
        """The queue's messages not final yet."""
        return int(await self._redis.zcard(self._k(user, queue, "members")))

    async def is_member(self, user: str, queue: str, message_id: str) -> bool:
        return await self._redis.zscore(self._k(user, queue, "members"), message_id) is not None

    async def join(
        self, user: str, queue: str, message_id: str, ready_at: int | None = None
    ) -> None:
        """Give the message its place in line (it keeps one it has) and make it ready now,
        or at ``ready_at``."""
        members = self._k(user, queue, "members")
        seq = await self._redis.zscore(members, message_id)
        if seq is None:
            seq = int(await self._redis.incr(self._keyspace.queue_seq(user)))
        ready, wake = self._k(user, queue, "ready"), self._wake_member(user, queue, message_id)

        def fill(w: Writes) -> None:
            w.pipe.zadd(members, {message_id: seq}, nx=True)
            if ready_at is None:
                w.pipe.zadd(ready, {message_id: seq}, nx=True)
            else:
                w.zadd(self._wake, wake.decode(), ready_at)

        await self._batch.run(fill)

    async def head(self, user: str, queue: str) -> str | None:
        """The ready message first in line."""
        found = await self._redis.zrange(self._k(user, queue, "ready"), 0, 0)
        return found[0].decode() if found else None

    async def drop(self, user: str, queue: str, message_id: str) -> None:
        """Take a message that is gone or final out of the line."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._k(user, queue, "ready"), message_id)
        pipe.zrem(self._k(user, queue, "members"), message_id)
        await pipe.execute()

    async def leave(self, user: str, queue: str, message_id: str, hold: bool) -> None:
        """A final message leaves the line; ``hold`` keeps its slot for a failure callback."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._k(user, queue, "members"), message_id)
        pipe.zrem(self._k(user, queue, "ready"), message_id)
        pipe.zrem(self._wake, self._wake_member(user, queue, message_id))
        if hold:
            pipe.hincrby(self._k(user, queue, "hold"), message_id, 1)
        await pipe.execute()

    # Slots ---------------------------------------------------------------------------------

    async def active_count(self, user: str, queue: str) -> int:
        return int(await self._redis.scard(self._k(user, queue, "active")))

    async def active(self, user: str, queue: str) -> set[str]:
        found = await self._redis.smembers(self._k(user, queue, "active"))
        return {m.decode() for m in found}

    async def is_active(self, user: str, queue: str, message_id: str) -> bool:
        return bool(await self._redis.sismember(self._k(user, queue, "active"), message_id))

    async def activate(self, user: str, queue: str, message_id: str) -> None:
        """The ready message takes a slot."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._k(user, queue, "ready"), message_id)
        pipe.sadd(self._k(user, queue, "active"), message_id)
        await pipe.execute()

    async def hold(self, user: str, queue: str, message_id: str, change: int) -> None:
        """Count callbacks the message's slot waits for (+1), or one that finished (-1)."""
        await self._redis.hincrby(self._k(user, queue, "hold"), message_id, change)

    async def held(self, user: str, queue: str, message_id: str) -> int:
        raw = await self._redis.hget(self._k(user, queue, "hold"), message_id)
        return int(raw) if raw is not None else 0

    async def release(self, user: str, queue: str, message_id: str) -> bool:
        """Free the message's slot; False when it held none."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._k(user, queue, "hold"), message_id)
        pipe.srem(self._k(user, queue, "active"), message_id)
        return bool((await pipe.execute())[1])

    # Delayed members -----------------------------------------------------------------------

    async def next_ready(self) -> int | None:
        """When the first delayed member of any queue becomes ready."""
        first = await self._redis.zrange(self._wake, 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    async def delayed_until(self, now_ms: int) -> list[tuple[str, str, str]]:
        """Delayed members ready by ``now_ms``, as (user, queue, message id)."""
        found = await self._redis.zrangebyscore(self._wake, "-inf", now_ms)
        out = []
        for member in found:
            user, queue, message_id = _json.loads(member)
            out.append((user, queue, message_id))
        return out

    async def purge(self, user: str) -> None:
        """Take the user's delayed members off the shared index."""
        head = self._keyspace.literal(_json.dumps([user]).decode()[:-1]) + ",*"
        found = [m async for m in self._redis.zscan_iter(self._wake, match=head, count=1_000)]
        if found:
            await self._redis.zrem(self._wake, *(member for member, _ in found))

    async def make_ready(self, user: str, queue: str, message_id: str) -> None:
        """A delayed member joins the ready line (if it is still a member)."""
        seq = await self._redis.zscore(self._k(user, queue, "members"), message_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._wake, self._wake_member(user, queue, message_id))
        if seq is not None:
            pipe.zadd(self._k(user, queue, "ready"), {message_id: seq}, nx=True)
        await pipe.execute()
