"""Everything one running emulator holds: settings, store, clock, engine, users."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .._errors import Forbidden, Unauthorized
from ..delivery.clock import Clock, RealClock
from ..delivery.engine import Engine
from ..delivery.routing import Router
from ..delivery.transport import AiohttpTransport
from ..model.headers import parse_publish
from ..model.ids import choose
from ..services.batch import Batches
from ..services.dead_letters import DeadLetters
from ..services.faults import Faults
from ..services.flow_control import FlowControl
from ..services.inspection import History, Inspector
from ..services.logs import Logs
from ..services.loops import Loops
from ..services.messages import Messages
from ..services.publisher import Publisher
from ..services.queues import Queues
from ..services.quotas import Quotas
from ..services.schedules import Schedules
from ..services.url_groups import UrlGroups
from ..services.users import User, make_token
from ..store.core import Store, StoreUnavailable
from ..store.lease import RENEW_S, Lease, describe
from ..workflows import RunDlq, RunMessages, Runs, RunStore, Waits
from .config import Settings

__all__ = ["Caller", "Runtime", "Stateful"]

log = logging.getLogger("qstash_emulator")

_KEY_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def new_signing_key() -> str:
    return "sig_" + choose(_KEY_ALPHABET, 28)


class Stateful(Protocol):
    """A part that keeps state in this process, besides what the store holds."""

    def reset(self) -> None:
        """Forget all of it: the store was flushed."""
        ...

    def forget_user(self, user: str) -> None:
        """Forget what is held for ``user``: its data is gone, or the user is."""
        ...


@dataclass(frozen=True)
class Caller:
    """The user behind a request, and whether its token may write."""

    user: User
    readonly: bool

    @property
    def user_id(self) -> str:
        return self.user.user_id


class Runtime:
    """The state shared by the API handlers and the engine."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock = clock or RealClock()
        self.store = store = Store.connect(
            settings.redis_url, settings.log_retention, settings.redis_prefix, settings.body_budget
        )
        retention = settings.limits.dlq_retention_s
        store.dlq_retention_ms = retention * 1_000 if retention is not None else None
        # A shared Redis serves one emulator at a time (see store.lease); memory is private.
        self.lease = store.lease() if settings.redis_url else None
        self._keeper: asyncio.Task[None] | None = None
        self.started_at = time.monotonic()  # again at start(): the uptime /_emulator/health shows
        self.router = Router(AiohttpTransport(settings.message_size_limit))
        self.engine = engine = Engine(store, settings, clock, self.router, self.signing_keys)
        self.publisher = publisher = Publisher(store, settings, clock, engine)
        self.faults = Faults()
        self.history = History(body_budget=settings.body_budget)
        self.quotas = Quotas(store, settings, clock)
        self.loops = Loops(settings)
        self.url_groups = UrlGroups(store, settings, clock)
        self.messages = Messages(store, settings, clock, engine)
        self.queues = Queues(store, settings, clock, engine.notify, self.messages.cancel_many)
        self.schedules = Schedules(store, settings, clock, publisher)
        self.flow_control = FlowControl(store, settings, clock, engine.notify)
        self.dead_letters = DeadLetters(store, settings, clock, publisher)
        self.logs = Logs(store)
        self.runs = Runs(RunStore(store), settings, clock, engine)
        self.waits = Waits(self.runs.store, self.runs, settings, clock)
        self.run_messages = RunMessages(self.runs)
        self.run_dlq = RunDlq(self.runs, self.run_messages, store)
        self.inspector = Inspector(store, clock, engine, self.history, self.schedules)
        self.batches = Batches(
            settings, publisher, self.quotas, self.queues, self.url_groups, self.runs
        )

        # How the parts plug into each other. A message meets the gates in this order: its
        # place in a queue first; flow control last, since a message it admits is attempted at
        # once, and a gate after it could hold one that occupies a flow-control slot.
        engine.gates = [self.queues, self.schedules, self.flow_control]
        engine.timers = [self.schedules, self.flow_control, self.queues, self.waits]
        engine.listeners.append(self.history.add)
        engine.runs = self.run_messages
        publisher.resolve_group = self.url_groups.resolve
        self.url_groups.loops = self.batches.loops = self.loops
        publisher.checks.append(self.quotas.check_publish)
        publisher.accepting.append(self.flow_control.accepting)
        publisher.stored.append(self.flow_control.stored)
        publisher.queue_intake = self.queues.accept
        publisher.runs = self.runs
        self.runs.publish = self.waits.publish = self._publish_items
        self.runs.publish_options = publisher.publish
        # What keeps state in this process besides the store: told when the store is flushed
        # (reset) and when a user's data goes (forget_user).
        self._stateful: tuple[Stateful, ...] = (
            self.faults,
            self.history,
            self.router,
            self.schedules,
            self.flow_control,
        )

        self._tokens: dict[str, Caller] = {}
        self._users: dict[str, User] = {}
        self._keys: dict[str, tuple[str, str]] = {}
        # Why a token that names nobody right now is refused (see ``bind_token``).
        self._unbound: dict[str, str] = {}
        # Called with each authenticated caller (the pytest plugin notes who used the API).
        self.authenticated: list[Callable[[Caller], None]] = []
        for user in settings.users:
            self.add_user(user)

    # Users ----------------------------------------------------------------------------------

    def add_user(self, user: User) -> User:
        """Let ``user`` call the API; its data is invisible to every other user."""
        self._users[user.user_id] = user
        self._tokens[user.token] = Caller(user, readonly=False)
        if user.readonly_token:
            self._tokens[user.readonly_token] = Caller(user, readonly=True)
        return user

    def create_user(self, user_id: str | None = None, keys: tuple[str, str] | None = None) -> User:
        """A fresh isolated user with its own token and signing keys (new ones unless given)."""
        user_id = user_id or "user_" + choose("0123456789abcdef", 12)
        current, nxt = keys or (new_signing_key(), new_signing_key())
        return self.add_user(
            User(user_id, make_token(user_id), current, nxt, make_token(user_id + "-readonly"))
        )

    def bind_token(self, token: str, user_id: str | None, unbound: str = "") -> None:
        """Make ``token`` act for ``user_id``, or for nobody (refused with ``unbound`` as the
        reason): a token that outlives users, such as the pytest plugin's session token,
        which stands for whichever test is running."""
        if user_id is None:
            self._tokens.pop(token, None)
            self._unbound[token] = unbound
        else:
            self._tokens[token] = Caller(self._users[user_id], readonly=False)

    def remove_user(self, user_id: str) -> None:
        """The user's tokens stop working, and nothing this process holds for it is kept (its
        stored data stays: ``purge_user`` deletes that)."""
        user = self._users.pop(user_id, None)
        if user is None:
            return
        self._tokens.pop(user.token, None)
        if user.readonly_token:
            self._tokens.pop(user.readonly_token, None)
        self._forget_user(user_id)

    async def purge_user(self, user_id: str) -> None:
        """Delete everything the user stored (messages, logs, dead letters, schedules,
        queues, flow-control keys, runs) and what this process holds for it."""
        await self.store.purge_user(user_id)
        self._forget_user(user_id)

    def _forget_user(self, user_id: str) -> None:
        self._keys.pop(user_id, None)
        for part in self._stateful:
            part.forget_user(user_id)

    @property
    def users(self) -> list[User]:
        return list(self._users.values())

    def authenticate(self, token: str | None, write: bool) -> Caller:
        if not token:
            raise Unauthorized(
                "Unauthorized: missing bearer token "
                "(Authorization: Bearer <QSTASH_TOKEN> or ?qstash_token=)"
            )
        caller = self._tokens.get(token)
        if caller is None:
            raise Unauthorized("Unauthorized: " + (self._unbound.get(token) or "invalid token"))
        if write and caller.readonly:
            raise Forbidden("Forbidden: this token is read-only")
        for listener in self.authenticated:
            listener(caller)
        return caller

    async def _publish_items(
        self, user: str, destination: str, items: list[tuple[str, str]], body: bytes, ip: str
    ) -> object:
        """Publish as if a client had sent these headers (messages the server makes)."""
        opts = parse_publish(items, self.settings)
        return await self.publisher.publish(user, destination, opts, body, ip)

    # Signing keys ---------------------------------------------------------------------------

    def known_keys(self, user_id: str) -> tuple[str, str]:
        """The user's (current, next) keys as this process last saw them, rotations included,
        without a trip to the store."""
        cached = self._keys.get(user_id)
        if cached is not None:
            return cached
        user = self._users[user_id]
        return user.current_signing_key, user.next_signing_key

    async def signing_keys(self, user_id: str) -> tuple[str, str]:
        """The user's (current, next) keys, after any rotation stored in Redis."""
        cached = self._keys.get(user_id)
        if cached is not None:
            return cached
        stored = await self.store.get_keys(user_id)
        if stored is None:
            user = self._users.get(user_id)
            stored = (
                (user.current_signing_key, user.next_signing_key)
                if user
                else (new_signing_key(), new_signing_key())
            )
        self._keys[user_id] = stored
        return stored

    async def rotate_keys(self, user_id: str) -> tuple[str, str]:
        _, nxt = await self.signing_keys(user_id)
        keys = (nxt, new_signing_key())
        await self.store.set_keys(user_id, *keys)
        self._keys[user_id] = keys
        return keys

    # Life cycle -----------------------------------------------------------------------------

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
            self._keys.clear()
            for part in self._stateful:
                part.reset()
