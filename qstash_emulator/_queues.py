"""Queues (docs/behaviour.md#queues): strict FIFO per queue, at most ``parallelism`` active.

A queue message is stored parked (off the due list). The queue decides when it goes:

- at enqueue it gets the queue's next sequence number and joins ``members`` (what ``lag``
  counts); once its delay is over it joins ``ready``, a FIFO ordered by that number;
- ``_pump`` moves the oldest ready messages to the due list while the queue has a free slot
  and is not paused, marking each ``active``;
- a message stays active until it is final (delivered, failed, cancelled) *and* every callback
  and failure callback it caused is final. Callbacks inherit ``queue_name`` and carry
  ``source_message_id``; ``hold`` counts those not yet final: +1 per attempt when the message
  has a callback (``attempt_done``), +1 when it fails with a failure callback, -1 as each
  callback finishes.

Pausing stops new messages from starting; active ones finish their retries and callbacks.
A delayed message joins the FIFO when its delay is over, so it never blocks the queue.
Deleting a queue cancels its messages that have not started (logged CANCEL_REQUESTED and
CANCELED, as a bulk cancel would); active ones finish. Enqueuing to it again re-creates it.

Stored per user: ``queues`` hash (name -> config JSON), ``qseq`` counter, and per queue
``q:{name}:members``/``ready`` (zsets, score = sequence), ``active`` (set), ``hold`` (hash).
``qwake`` (global zset, like ``due``) holds delayed members by the time they become ready.
Everything is in the store, so a restart on a real Redis resumes where it stopped; a message
the store recovers from in-flight is already active and is simply admitted again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from . import _json
from ._clock import Clock
from ._config import Settings
from ._destination import validate_name
from ._errors import BadRequest, NotFound, QuotaExceeded
from ._keyspace import QueuePart
from ._models import FINAL_STATES, Message, State
from ._quotas import require_room
from ._store import Store

__all__ = ["Queues"]


class Queues:
    """The queue gate (engine.gates), its delay timer (engine.timers) and the queue API."""

    def __init__(
        self, store: Store, settings: Settings, clock: Clock, notify: Callable[[], None]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._notify = notify
        self._wake = store.keyspace.queue_wake
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_in: asyncio.AbstractEventLoop | None = None
        self._recovering = False
        # Hear a queue paused or resumed: (user, queue, paused).
        self.pause_listeners: list[Callable[[str, str, bool], None]] = []

    # Keys ----------------------------------------------------------------------------------

    def _configs(self, user: str) -> str:
        return self.store.keyspace.queues(user)

    def _k(self, user: str, queue: str, part: QueuePart) -> str:
        return self.store.keyspace.queue(user, queue, part)

    def _lock(self, user: str, queue: str) -> asyncio.Lock:
        """One lock per queue, per event loop (an Emulator restarted in a new loop keeps us)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._locks = loop, {}
        lock = self._locks.get((user, queue))
        if lock is None:
            lock = self._locks[(user, queue)] = asyncio.Lock()
        return lock

    @staticmethod
    def _wake_member(user: str, queue: str, message_id: str) -> bytes:
        return _json.dumps([user, queue, message_id])

    # Configuration -------------------------------------------------------------------------

    async def _config(self, user: str, queue: str) -> dict[str, Any] | None:
        raw = await self.store.redis.hget(self._configs(user), queue)
        return None if raw is None else dict(_json.loads(raw))

    async def upsert(self, user: str, body: Any) -> None:
        """``POST /v2/queues``: create or change a queue (412 past the plan's limits)."""
        if not isinstance(body, dict):
            raise BadRequest('invalid body: expected {"queueName": ..., "parallelism": ...}')
        name = body.get("queueName")
        if not isinstance(name, str):
            raise BadRequest("invalid queueName: required, a string")
        validate_name(name, "queueName")
        parallelism = body.get("parallelism", 1)
        if parallelism is None:
            parallelism = 1
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            raise BadRequest(f"invalid parallelism: {parallelism!r}, want an integer >= 1")
        limits = self.settings.limits
        if parallelism > limits.max_queue_parallelism:
            raise QuotaExceeded(
                f"invalid parallelism: {parallelism} exceeds the {limits.name} plan's maximum "
                f"queue parallelism of {limits.max_queue_parallelism}"
            )
        paused = body.get("paused", False)
        if paused is None:
            paused = False
        if not isinstance(paused, bool):
            raise BadRequest(f"invalid paused: {paused!r}, want true or false")
        async with self._lock(user, name):
            config = await self._config(user, name)
            now = self.clock.now_ms()
            if config is None:
                await self._require_room(user)
                config = {"createdAt": now}
            config.update(parallelism=parallelism, paused=paused, updatedAt=now)
            await self.store.redis.hset(self._configs(user), name, _json.dumps(config))
            await self._pump(user, name)

    async def _require_room(self, user: str) -> None:
        limits = self.settings.limits
        count = int(await self.store.redis.hlen(self._configs(user)))
        require_room("queues", count, limits.max_queues, limits.name)

    async def check_enqueue(self, user: str, queue: str) -> None:
        """Before an enqueue: 412 when the queue is missing and no more may be created.

        The queue itself is created (parallelism 1, docs/behaviour.md#queues) by ``accept``, once a
        message is actually stored for it.
        """
        validate_name(queue, "queueName")
        if not await self.store.redis.hexists(self._configs(user), queue):
            await self._require_room(user)

    async def _create(self, user: str, queue: str) -> None:
        now = self.clock.now_ms()
        config = {"createdAt": now, "updatedAt": now, "parallelism": 1, "paused": False}
        await self.store.redis.hsetnx(self._configs(user), queue, _json.dumps(config))

    async def view(self, user: str, queue: str, config: dict[str, Any]) -> dict[str, Any]:
        """The Queue JSON; ``lag`` counts messages not yet final (the active ones too)."""
        return {
            "name": queue,
            "parallelism": config["parallelism"],
            "createdAt": config["createdAt"],
            "updatedAt": config["updatedAt"],
            "lag": int(await self.store.redis.zcard(self._k(user, queue, "members"))),
            "paused": config["paused"],
        }

    async def get(self, user: str, queue: str) -> dict[str, Any]:
        config = await self._config(user, queue)
        if config is None:
            raise NotFound(f"queue {queue!r} not found")
        return await self.view(user, queue, config)

    async def list_all(self, user: str) -> list[dict[str, Any]]:
        raw = await self.store.redis.hgetall(self._configs(user))
        views = [await self.view(user, k.decode(), _json.loads(v)) for k, v in raw.items()]
        return sorted(views, key=lambda q: (q["createdAt"], q["name"]))

    async def set_paused(self, user: str, queue: str, paused: bool) -> None:
        """Pause or resume (both idempotent); resuming starts the oldest waiting messages."""
        async with self._lock(user, queue):
            config = await self._config(user, queue)
            if config is None:
                raise NotFound(f"queue {queue!r} not found")
            if config["paused"] != paused:
                config.update(paused=paused, updatedAt=self.clock.now_ms())
                await self.store.redis.hset(self._configs(user), queue, _json.dumps(config))
                for listener in self.pause_listeners:
                    listener(user, queue, paused)
            await self._pump(user, queue)

    async def delete(self, user: str, queue: str) -> list[str]:
        """Forget the queue; returns its messages that had not started, for the caller to
        cancel. Active messages keep their slots until they and their callbacks finish."""
        async with self._lock(user, queue):
            members = [
                m.decode()
                for m in await self.store.redis.zrange(self._k(user, queue, "members"), 0, -1)
            ]
            active = {
                m.decode() for m in await self.store.redis.smembers(self._k(user, queue, "active"))
            }
            waiting = [m for m in members if m not in active]
            pipe = self.store.redis.pipeline(transaction=True)
            pipe.hdel(self._configs(user), queue)
            pipe.delete(self._k(user, queue, "ready"))
            if waiting:
                pipe.zrem(self._k(user, queue, "members"), *waiting)
                pipe.zrem(self._wake, *(self._wake_member(user, queue, m) for m in waiting))
            await pipe.execute()
        return waiting

    # Intake --------------------------------------------------------------------------------

    async def accept(self, messages: list[Message]) -> None:
        """``Publisher.queue_intake``: new queue messages (stored parked) join their queue."""
        by_queue: dict[tuple[str, str], list[Message]] = {}
        for msg in messages:
            assert msg.queue_name is not None
            by_queue.setdefault((msg.user, msg.queue_name), []).append(msg)
        for (user, queue), msgs in by_queue.items():
            async with self._lock(user, queue):
                if await self._config(user, queue) is None:
                    await self._create(user, queue)  # never refuse a message already stored
                await self._join(user, queue, msgs)
                await self._pump(user, queue)

    async def _join(
        self, user: str, queue: str, msgs: Iterable[Message], *, ready: bool = False
    ) -> None:
        """Give each message its place in line (kept if it has one); ready now or later."""
        now, redis = self.clock.now_ms(), self.store.redis
        for msg in msgs:
            seq = await redis.zscore(self._k(user, queue, "members"), msg.id)
            if seq is None:
                seq = int(await redis.incr(self.store.keyspace.queue_seq(user)))
            pipe = redis.pipeline(transaction=True)
            pipe.zadd(self._k(user, queue, "members"), {msg.id: seq}, nx=True)
            if ready or msg.not_before <= now:
                pipe.zadd(self._k(user, queue, "ready"), {msg.id: seq}, nx=True)
            else:
                pipe.zadd(self._wake, {self._wake_member(user, queue, msg.id): msg.not_before})
            await pipe.execute()

    async def _pump(self, user: str, queue: str) -> None:
        """Start the oldest ready messages while slots are free. Call with the queue's lock."""
        config = await self._config(user, queue)
        if config is None or config["paused"]:
            return
        redis = self.store.redis
        free = config["parallelism"] - int(await redis.scard(self._k(user, queue, "active")))
        started = False
        while free > 0:
            head = await redis.zrange(self._k(user, queue, "ready"), 0, 0)
            if not head:
                break
            message_id = head[0].decode()
            msg = await self.store.get(message_id)
            if msg is None or msg.state in FINAL_STATES:
                pipe = redis.pipeline(transaction=True)
                pipe.zrem(self._k(user, queue, "ready"), message_id)
                pipe.zrem(self._k(user, queue, "members"), message_id)
                await pipe.execute()
                continue
            msg.due = self.clock.now_ms()
            await self.store.reschedule(msg)
            pipe = redis.pipeline(transaction=True)
            pipe.zrem(self._k(user, queue, "ready"), message_id)
            pipe.sadd(self._k(user, queue, "active"), message_id)
            await pipe.execute()
            free -= 1
            started = True
        if started:
            self._notify()

    # Gate ----------------------------------------------------------------------------------

    async def admit(self, msg: Message) -> bool:
        """Queue messages start only from ``_pump``; callbacks ride on their source's slot."""
        if msg.queue_name is None or msg.kind != "message":
            return True
        user, queue = msg.user, msg.queue_name
        async with self._lock(user, queue):
            if await self.store.redis.sismember(self._k(user, queue, "active"), msg.id):
                return True  # a retry, or an attempt recovered after a restart
            # Due without a slot (a DLQ retry of a queue message): wait in line like the rest.
            await self.store.park(msg)
            if await self._config(user, queue) is None:
                await self._create(user, queue)
            await self._join(user, queue, [msg], ready=True)
            await self._pump(user, queue)
        return False

    async def attempt_done(self, msg: Message) -> None:
        if msg.queue_name is not None and msg.kind == "message" and msg.callback:
            await self.store.redis.hincrby(self._k(msg.user, msg.queue_name, "hold"), msg.id, 1)

    async def finished(self, msg: Message) -> None:
        if msg.queue_name is None:
            return
        user, queue, redis = msg.user, msg.queue_name, self.store.redis
        if msg.kind == "message":
            root = msg.id
            pipe = redis.pipeline(transaction=True)
            pipe.zrem(self._k(user, queue, "members"), root)
            pipe.zrem(self._k(user, queue, "ready"), root)
            pipe.zrem(self._wake, self._wake_member(user, queue, root))
            if msg.state == State.FAILED and msg.failure_callback:
                pipe.hincrby(self._k(user, queue, "hold"), root, 1)
            await pipe.execute()
        elif msg.source_message_id is not None:
            root = msg.source_message_id
            await redis.hincrby(self._k(user, queue, "hold"), root, -1)
        else:
            return
        await self._release(user, queue, root)

    async def _release(self, user: str, queue: str, root: str) -> None:
        """Free ``root``'s slot once it and all its callbacks are final."""
        redis = self.store.redis
        async with self._lock(user, queue):
            if await redis.zscore(self._k(user, queue, "members"), root) is not None:
                return
            hold = await redis.hget(self._k(user, queue, "hold"), root)
            if hold is not None and int(hold) > 0:
                return
            pipe = redis.pipeline(transaction=True)
            pipe.hdel(self._k(user, queue, "hold"), root)
            pipe.srem(self._k(user, queue, "active"), root)
            removed = (await pipe.execute())[1]
            if removed:
                await self._pump(user, queue)

    # Timer ---------------------------------------------------------------------------------

    async def next_due(self) -> int | None:
        loop = asyncio.get_running_loop()
        if loop is not self._started_in:  # the engine (re)started: look at every queue once
            self._started_in, self._recovering = loop, True
        if self._recovering:
            return self.clock.now_ms()
        first = await self.store.redis.zrange(self._wake, 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    async def fire(self, now_ms: int) -> None:
        """Delayed members whose time has come join their FIFO; after start-up, every queue
        is pumped once (a restart may have stopped between a release and its pump)."""
        touched: set[tuple[str, str]] = set()
        if self._recovering:
            self._recovering = False
            touched |= await self._all_queues()
            for user, queue in touched:
                await self._settle_finished(user, queue)
        redis = self.store.redis
        for member in await redis.zrangebyscore(self._wake, "-inf", now_ms):
            user, queue, message_id = _json.loads(member)
            async with self._lock(user, queue):
                seq = await redis.zscore(self._k(user, queue, "members"), message_id)
                pipe = redis.pipeline(transaction=True)
                pipe.zrem(self._wake, member)
                if seq is not None:
                    pipe.zadd(self._k(user, queue, "ready"), {message_id: seq}, nx=True)
                await pipe.execute()
            touched.add((user, queue))
        for user, queue in sorted(touched):
            async with self._lock(user, queue):
                await self._pump(user, queue)

    async def _settle_finished(self, user: str, queue: str) -> None:
        """A crash between a message's final state and ``finished`` left it holding its slot
        (it is final, so nothing would ever release it): finish it now."""
        for raw in await self.store.redis.smembers(self._k(user, queue, "active")):
            message_id = raw.decode()
            msg = await self.store.get(message_id)
            if msg is not None and msg.state not in FINAL_STATES:
                continue
            members = self._k(user, queue, "members")
            if msg is not None and await self.store.redis.zscore(members, message_id) is not None:
                await self.finished(msg)
                continue
            pipe = self.store.redis.pipeline(transaction=True)
            pipe.zrem(self._k(user, queue, "members"), message_id)
            pipe.zrem(self._k(user, queue, "ready"), message_id)
            await pipe.execute()
            await self._release(user, queue, message_id)

    async def _all_queues(self) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        keys = self.store.keyspace
        async for key in self.store.redis.scan_iter(match=keys.all_queue_configs(), count=1_000):
            user = keys.user_of_queue_configs(key.decode())
            for name in await self.store.redis.hkeys(key):
                found.add((user, name.decode()))
        return found
