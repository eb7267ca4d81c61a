"""Everything one running emulator holds: settings, store, clock, engine, the services."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from ..delivery.clock import Clock, RealClock
from ..delivery.engine import Engine
from ..delivery.routing import Router
from ..delivery.transport import AiohttpTransport
from ..services.batch import Batches
from ..services.dead_letters import DeadLetters
from ..services.faults import Faults
from ..services.flow_control import FlowControlKeys
from ..services.inspection import History, Inspector
from ..services.keys import SigningKeys
from ..services.logs import Logs
from ..services.loops import Loops
from ..services.messages import Messages
from ..services.publisher import Publisher
from ..services.queues import Queues
from ..services.quotas import Quotas
from ..services.schedules import Schedules
from ..services.url_groups import UrlGroups
from ..services.users import Users
from ..store.core import Store, StoreUnavailable
from ..store.lease import RENEW_S, Lease, describe
from ..workflows import RunDlq, RunMessages, Runs, RunStore, Waits
from .config import Settings

__all__ = ["Runtime", "Stateful"]

log = logging.getLogger("qstash_emulator")


class Stateful(Protocol):
    """A part that keeps state in this process, besides what the store holds."""

    def reset(self) -> None:
        """Forget all of it: the store was flushed."""
        ...

    def forget_user(self, user: str) -> None:
        """Forget what is held for ``user``: its data is gone, or the user is."""
        ...


class Runtime:
    """The state shared by the API handlers and the engine."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock = clock or RealClock()
        retention = settings.limits.dlq_retention_s
        self.store = store = Store.connect(
            settings.redis_url,
            settings.log_retention,
            settings.redis_prefix,
            settings.body_budget,
            retention * 1_000 if retention is not None else None,
        )
        # A shared Redis serves one emulator at a time (see store.lease); memory is private.
        self.lease = store.lease() if settings.redis_url else None
        self._keeper: asyncio.Task[None] | None = None
        self.started_at = time.monotonic()  # again at start(): the uptime /_emulator/health shows
        self.router = Router(AiohttpTransport(settings.message_size_limit))
        self.users = Users(settings.users)
        self.keys = SigningKeys(store, self.users)
        self.engine = engine = Engine(store, settings, clock, self.router, self.keys.get)
        self.faults = Faults()
        self.history = History(body_budget=settings.body_budget)
        self.quotas = Quotas(store, settings, clock)
        self.loops = Loops(settings)
        self.url_groups = UrlGroups(store, settings, clock, self.loops)
        self.messages = Messages(store, settings, clock, engine)
        self.queues = Queues(store, settings, clock, engine.notify, self.messages.cancel_many)
        self.flow_control = FlowControlKeys(store, settings, clock, engine.notify)
        self.publisher = publisher = Publisher(
            store,
            settings,
            clock,
            engine,
            resolve_group=self.url_groups.resolve,
            checks=[self.quotas.check_publish],
            accepting=[self.flow_control.accepting],
            stored=[self.flow_control.stored],
            queue_intake=self.queues.accept,
        )
        self.schedules = Schedules(store, settings, clock, publisher)
        self.dead_letters = DeadLetters(store, settings, clock, publisher)
        self.logs = Logs(store)
        self.runs = Runs(RunStore(store), settings, clock, engine, publisher)
        self.waits = Waits(self.runs.store, self.runs, settings, clock, publisher)
        run_messages = RunMessages(self.runs)
        self.run_dlq = RunDlq(self.runs, run_messages, store)
        self.inspector = Inspector(store, clock, engine, self.history, self.schedules)
        self.batches = Batches(
            settings, publisher, self.quotas, self.queues, self.url_groups, self.runs, self.loops
        )
        # The two cycles, closed once: the engine and the publisher are built first, and what
        # is built on them plugs back in (the gate order and its reason: Engine.attach).
        publisher.attach(runs=self.runs)
        engine.attach(
            gates=[self.queues, self.schedules, self.flow_control],
            timers=[self.schedules, self.flow_control, self.queues, self.waits],
            listeners=[self.history.add],
            runs=run_messages,
        )
        # What keeps state in this process besides the store: told when the store is flushed
        # (reset) and when a user's data goes (forget_user).
        self._stateful: tuple[Stateful, ...] = (
            self.keys,
            self.faults,
            self.history,
            self.router,
            self.schedules,
            self.flow_control,
            self.queues,
        )

    # Users ----------------------------------------------------------------------------------

    def remove_user(self, user_id: str) -> None:
        """The user's tokens stop working, and nothing this process holds for it is kept (its
        stored data stays: ``purge_user`` deletes that)."""
        if self.users.remove(user_id):
            self._forget_user(user_id)

    async def purge_user(self, user_id: str) -> None:
        """Delete everything the user stored (messages, logs, dead letters, schedules,
        queues, flow-control keys, runs, rotated keys) and what this process holds for it."""
        await self.store.purge_user(user_id)
        self._forget_user(user_id)

    def _forget_user(self, user_id: str) -> None:
        for part in self._stateful:
            part.forget_user(user_id)

    # Life cycle -----------------------------------------------------------------------------

    def uptime_ms(self) -> int:
        """Milliseconds since the emulator started (the uptime ``/_emulator/health`` shows)."""
        return int((time.monotonic() - self.started_at) * 1_000)

    async def start(self) -> None:
        self.started_at = time.monotonic()
        try:
            if self.lease is not None:
                await self.lease.acquire()
                self._keeper = asyncio.create_task(self._keep_lease(self.lease))
            await self.engine.start()
        except BaseException:
            await self.stop()  # a refused start (a store it cannot use) leaves nothing open
            raise

    async def _keep_lease(self, lease: Lease) -> None:
        """Renew the lease; if another emulator took the store meanwhile, stop delivering."""
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                if await lease.renew():
                    continue
                holder = await lease.holder()
            except StoreUnavailable:
                continue  # an outage: renewed (or taken back) once Redis answers
            log.error(
                "another qstash-emulator took this Redis (%s) while it was unreachable; "
                "this one stops delivering",
                describe(holder),
            )
            await self.engine.stop()
            return

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        await self.engine.stop()
        if self.lease is not None:
            try:
                await self.lease.release()
            except StoreUnavailable:
                pass  # it lapses on its own
        await self.store.close()

    async def reset(self) -> None:
        """Forget every message, log, DLQ entry and resource; keep users and settings."""
        async with self.engine.halted():
            await self.store.flush()
            for part in self._stateful:
                part.reset()
