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

Stored (``store.queues``): each user's queue configs; per queue its members and ready line
(by place in line), the active ones and their holds; and an index of delayed members by the
time they become ready. Everything is in the store, so a restart on a real Redis resumes
where it stopped; a message the store recovers from in-flight is already active and is simply
admitted again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from .._errors import BadRequest, NotFound, QuotaExceeded
from ..delivery.clock import Clock
from ..delivery.next_time import NextTime
from ..model.destination import validate_name
from ..model.message import FINAL_STATES, Message, State
from ..server.config import Settings
from ..store.core import Store
from .quotas import require_room

__all__ = ["Queues"]

T = TypeVar("T")


def _new_config(now: int) -> dict[str, Any]:
    """A queue made by an enqueue (or before its first upsert): parallelism 1, running."""
    return {"createdAt": now, "updatedAt": now, "parallelism": 1, "paused": False}


class Queues:
    """The queue gate (engine.gates), its delay timer (engine.timers) and the queue API."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        notify: Callable[[], None],
        cancel: Callable[[str, list[str]], Awaitable[int]],
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._notify = notify
        self._cancel = cancel
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_in: asyncio.AbstractEventLoop | None = None
        self._recovering = False
        # When the first delayed member becomes ready: a time written to the index makes it
        # stale (``_due_written``); a member taken off only leaves it early, and ``fire``
        # makes it stale once it has run.
        self._next = NextTime(lambda: self.store.queues.next_ready())
        store.due_listeners.append(self._due_written)
        # Hear a queue paused or resumed: (user, queue, paused).
        self.pause_listeners: list[Callable[[str, str, bool], None]] = []

    # Locks ---------------------------------------------------------------------------------

    def _lock(self, user: str, queue: str) -> asyncio.Lock:
        """One lock per queue, per event loop (an Emulator restarted in a new loop keeps us)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._locks = loop, {}
        lock = self._locks.get((user, queue))
        if lock is None:
            lock = self._locks[(user, queue)] = asyncio.Lock()
        return lock

    # Configuration -------------------------------------------------------------------------

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
            now = self.clock.now_ms()
            config = await self.store.queues.config(user, name)
            if config is None:
                fresh = _new_config(now)
                await self._create_within_limit(user, name, fresh)
                config = await self.store.queues.config(user, name) or fresh
            config.update(parallelism=parallelism, paused=paused, updatedAt=now)
            await self.store.queues.put_config(user, name, config)
            await self._pump(user, name)

    async def _create_within_limit(self, user: str, queue: str, config: dict[str, Any]) -> bool:
        """Create the queue unless it exists; 412 past the plan's count. The check and the
        creation are one store step, so concurrent creations keep to the limit."""
        limits = self.settings.limits
        if await self.store.queues.exists(user, queue):  # the common case, one read
            return False
        done = await self.store.queues.create(user, queue, config, limits.max_queues)
        if isinstance(done, int):
            require_room("queues", done, limits.max_queues, limits.name)
        return done == "created"

    async def enqueue(self, user: str, queue: str, publish: Callable[[], Awaitable[T]]) -> T:
        """Run ``publish`` for an enqueue to ``queue``, creating the queue first when it is
        missing (parallelism 1, docs/behaviour.md#queues; 412 when no more may be created).
        A publish that is refused leaves no queue behind that it created."""
        validate_name(queue, "queueName")
        config = _new_config(self.clock.now_ms())
        created = await self._create_within_limit(user, queue, config)
        try:
            return await publish()
        except BaseException:
            if created:
                await self.store.queues.delete_if_empty(user, queue)
            raise

    async def _create(self, user: str, queue: str) -> None:
        await self.store.queues.add_config(user, queue, _new_config(self.clock.now_ms()))

    async def view(self, user: str, queue: str, config: dict[str, Any]) -> dict[str, Any]:
        """The Queue JSON; ``lag`` counts messages not yet final (the active ones too)."""
        return {
            "name": queue,
            "parallelism": config["parallelism"],
            "createdAt": config["createdAt"],
            "updatedAt": config["updatedAt"],
            "lag": await self.store.queues.lag(user, queue),
            "paused": config["paused"],
        }

    async def get(self, user: str, queue: str) -> dict[str, Any]:
        config = await self.store.queues.config(user, queue)
        if config is None:
            raise NotFound(f"queue {queue!r} not found")
        return await self.view(user, queue, config)

    async def list_all(self, user: str) -> list[dict[str, Any]]:
        configs = await self.store.queues.configs(user)
        views = [await self.view(user, name, config) for name, config in configs.items()]
        return sorted(views, key=lambda q: (q["createdAt"], q["name"]))

    async def set_paused(self, user: str, queue: str, paused: bool) -> None:
        """Pause or resume (both idempotent); resuming starts the oldest waiting messages."""
        async with self._lock(user, queue):
            config = await self.store.queues.config(user, queue)
            if config is None:
                raise NotFound(f"queue {queue!r} not found")
            if config["paused"] != paused:
                config.update(paused=paused, updatedAt=self.clock.now_ms())
                await self.store.queues.put_config(user, queue, config)
                for listener in self.pause_listeners:
                    listener(user, queue, paused)
            await self._pump(user, queue)

    async def delete(self, user: str, queue: str) -> None:
        """Forget the queue and cancel its messages that had not started (logged as a bulk
        cancel logs them). Active messages keep their slots until they and their callbacks
        finish."""
        async with self._lock(user, queue):
            waiting = await self.store.queues.delete(user, queue)
        if waiting:  # no ids would mean every message of the user
            await self._cancel(user, waiting)

    # Intake --------------------------------------------------------------------------------

    async def accept(self, messages: list[Message]) -> None:
        """``Publisher.queue_intake``: new queue messages (stored parked) join their queue."""
        by_queue: dict[tuple[str, str], list[Message]] = {}
        for msg in messages:
            assert msg.queue_name is not None
            by_queue.setdefault((msg.user, msg.queue_name), []).append(msg)
        for (user, queue), msgs in by_queue.items():
            async with self._lock(user, queue):
                if await self.store.queues.config(user, queue) is None:
                    await self._create(user, queue)  # never refuse a message already stored
                await self._join(user, queue, msgs)
                await self._pump(user, queue)

    async def _join(
        self, user: str, queue: str, msgs: Iterable[Message], *, ready: bool = False
    ) -> None:
        """Give each message its place in line (kept if it has one); ready now or later."""
        now = self.clock.now_ms()
        for msg in msgs:
            later = not ready and msg.not_before > now
            await self.store.queues.join(user, queue, msg.id, msg.not_before if later else None)

    async def _pump(self, user: str, queue: str) -> None:
        """Start the oldest ready messages while slots are free. Call with the queue's lock."""
        config = await self.store.queues.config(user, queue)
        if config is None or config["paused"]:
            return
        line = self.store.queues
        free = config["parallelism"] - await line.active_count(user, queue)
        started = False
        while free > 0:
            message_id = await line.head(user, queue)
            if message_id is None:
                break
            msg = await self.store.get(message_id)
            if msg is None or msg.state in FINAL_STATES:
                await line.drop(user, queue, message_id)
                continue
            msg.due = self.clock.now_ms()
            await self.store.reschedule(msg)
            await line.activate(user, queue, message_id)
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
            if await self.store.queues.is_active(user, queue, msg.id):
                return True  # a retry, or an attempt recovered after a restart
            # Due without a slot (a DLQ retry of a queue message): wait in line like the rest.
            await self.store.park(msg)
            if await self.store.queues.config(user, queue) is None:
                await self._create(user, queue)
            await self._join(user, queue, [msg], ready=True)
            await self._pump(user, queue)
        return False

    async def attempt_done(self, msg: Message) -> None:
        if msg.queue_name is not None and msg.kind == "message" and msg.options.callback:
            await self.store.queues.hold(msg.user, msg.queue_name, msg.id, 1)

    async def finished(self, msg: Message) -> None:
        if msg.queue_name is None:
            return
        user, queue = msg.user, msg.queue_name
        if msg.kind == "message":
            root = msg.id
            hold = msg.state == State.FAILED and bool(msg.options.failure_callback)
            await self.store.queues.leave(user, queue, root, hold)
        elif msg.source_message_id is not None:
            root = msg.source_message_id
            await self.store.queues.hold(user, queue, root, -1)
        else:
            return
        await self._release(user, queue, root)

    async def _release(self, user: str, queue: str, root: str) -> None:
        """Free ``root``'s slot once it and all its callbacks are final."""
        line = self.store.queues
        async with self._lock(user, queue):
            if await line.is_member(user, queue, root) or await line.held(user, queue, root) > 0:
                return
            if await line.release(user, queue, root):
                await self._pump(user, queue)

    # Timer ---------------------------------------------------------------------------------

    def _due_written(self, index: str, when_ms: int) -> None:
        """A delayed member's time was stored: the cached first one is stale."""
        if index == self.store.keyspace.queue_wake:
            self._next.stale()

    def reset(self) -> None:
        """Forget the cached first delayed time after the store was flushed."""
        self._next.stale()

    def forget_user(self, user: str) -> None:
        """The cached first delayed time may have been one of the user's members."""
        self._next.stale()

    async def next_due(self) -> int | None:
        loop = asyncio.get_running_loop()
        if loop is not self._started_in:  # the engine (re)started: look at every queue once
            self._started_in, self._recovering = loop, True
            self._next.stale()
        if self._recovering:
            return self.clock.now_ms()
        return await self._next.get()

    async def fire(self, now_ms: int) -> None:
        """Delayed members whose time has come join their FIFO; after start-up, every queue
        is pumped once (a restart may have stopped between a release and its pump)."""
        try:
            await self._fire(now_ms)
        finally:
            self._next.stale()  # after its writes: members left the index

    async def _fire(self, now_ms: int) -> None:
        touched: set[tuple[str, str]] = set()
        if self._recovering:
            self._recovering = False
            touched |= await self.store.queues.all_queues()
            for user, queue in touched:
                await self._settle_finished(user, queue)
        for user, queue, message_id in await self.store.queues.delayed_until(now_ms):
            async with self._lock(user, queue):
                await self.store.queues.make_ready(user, queue, message_id)
            touched.add((user, queue))
        for user, queue in sorted(touched):
            async with self._lock(user, queue):
                await self._pump(user, queue)

    async def _settle_finished(self, user: str, queue: str) -> None:
        """A crash between a message's final state and ``finished`` left it holding its slot
        (it is final, so nothing would ever release it): finish it now."""
        line = self.store.queues
        for message_id in await line.active(user, queue):
            msg = await self.store.get(message_id)
            if msg is not None and msg.state not in FINAL_STATES:
                continue
            if msg is not None and await line.is_member(user, queue, message_id):
                await self.finished(msg)
                continue
            await line.drop(user, queue, message_id)
            await self._release(user, queue, message_id)
