"""``Emulator``: the whole server in a background thread, for tests and scripts."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._errors import EmulatorError
from ..delivery.clock import Clock, RealClock, VirtualClock
from ..delivery.records import Attempt
from ..delivery.routing import Responder
from ..services.faults import Faults
from ..services.inspection import Inspector
from ..services.users import User
from ..workflows import Runs, Waits
from .app import create_app
from .config import Settings
from .connections import uvicorn_options
from .runtime import Runtime
from .serving import ThreadedServer

__all__ = ["Emulator"]

T = TypeVar("T")


class Emulator:
    """A QStash emulator on a local port, started in a thread; use as a context manager."""

    def __init__(
        self, settings: Settings | None = None, *, clock: Clock | None = None, **options: Any
    ) -> None:
        self.settings = dataclasses.replace(settings or Settings(port=0), **options)
        self.clock: Clock = clock or RealClock()
        self.runtime = Runtime(self.settings, self.clock)
        self.attempts: list[Attempt] = []
        self.on_attempt(self.attempts.append)
        self._server: ThreadedServer | None = None
        self._port = self.settings.port

    # Life cycle -----------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start serving; returns once the port accepts connections."""
        if self._server is not None:
            return self
        server = ThreadedServer(
            create_app(self.runtime),
            self.settings.host,
            self.settings.port,
            name="qstash-emulator",
            lifespan="on",
            **uvicorn_options(self.settings.max_connections, self.settings.header_timeout_s),
        )
        self._port = self.runtime.loops.port = server.port
        if self.runtime.lease is not None:
            self.runtime.lease.address = self.url
        try:
            server.start()
        except RuntimeError as exc:
            server.stop()
            raise RuntimeError(f"the emulator did not start: {exc}") from exc
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30) -> T:
        """Run ``coro`` on the server's event loop and wait for its result.

        On ``TimeoutError`` the coroutine is cancelled, so a wait that gave up does not go on
        moving the clock or delivering behind the caller's back.
        """
        if self._server is None:
            coro.close()
            raise RuntimeError("the emulator is not running")
        return self._server.call(coro, timeout)

    # What clients need ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = self.settings.host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._port}"

    @property
    def user(self) -> User:
        return self.settings.users[0]

    @property
    def token(self) -> str:
        return self.user.token

    @property
    def current_signing_key(self) -> str:
        return self.user.current_signing_key

    @property
    def next_signing_key(self) -> str:
        return self.user.next_signing_key

    def env(self, user: User | None = None) -> dict[str, str]:
        """The variables the official SDKs read, pointing at this emulator."""
        who = user or self.user
        return {
            "QSTASH_URL": self.url,
            "QSTASH_TOKEN": who.token,
            "QSTASH_CURRENT_SIGNING_KEY": who.current_signing_key,
            "QSTASH_NEXT_SIGNING_KEY": who.next_signing_key,
        }

    # Control --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all messages, logs, DLQ entries, resources and recorded attempts."""
        self.call(self.runtime.reset())
        self.attempts.clear()

    def create_user(self, user_id: str | None = None, keys: tuple[str, str] | None = None) -> User:
        """An isolated user (own token, and own signing keys unless ``keys``) on this server."""
        return self.runtime.users.create(user_id, keys)

    def wait_idle(self, timeout: float = 10) -> None:
        """Wait (in real time) until nothing is due now and no attempt is running."""
        self._wait(self.runtime.engine.wait_idle(), timeout, "waiting until nothing is due")

    def run_until_idle(self, timeout: float = 10, max_seconds: float | None = None) -> None:
        """Deliver everything, jumping a virtual clock to each next due time.

        Without ``max_seconds`` the clock moves only for pending messages (up to a year ahead),
        never just to fire a schedule, which is always due again. With ``max_seconds`` it also
        moves to every schedule run within that many seconds. With a real clock this waits
        instead of jumping.
        """
        recurring = max_seconds is not None
        drain = self._drain(366 * 86_400 if max_seconds is None else max_seconds, recurring)
        self._wait(drain, timeout, "running until no message is due")

    def _wait(self, coro: Coroutine[Any, Any, None], timeout: float, what: str) -> None:
        try:
            self.call(coro, timeout)
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout:g}s {what}\n{self.pending()}") from None

    def pending(self, timeout: float = 2, user: str | None = None) -> str:
        """What is not delivered yet (``user``'s, or every user's), one message a line, for a
        wait that gave up; says so when the event loop is too busy to tell."""
        users = [user] if user is not None else [u.user_id for u in self.runtime.users.all()]

        async def look() -> list[str]:
            inspector, now = self.runtime.inspector, self.clock.now_ms()
            lines = []
            for who in users:
                lines += ["  " + w.describe(now) for w in await inspector.waiting(who)]
            return lines

        try:
            lines = self.call(look(), timeout)
        except TimeoutError:
            return (
                f"The emulator did not answer within {timeout:g}s: something blocks its event "
                "loop, so what is pending is unknown."
            )
        return "Pending messages:\n" + "\n".join(lines) if lines else "No message is pending."

    async def _drain(self, max_seconds: float, recurring: bool) -> None:
        engine = self.runtime.engine
        limit = self.clock.now_ms() + int(max_seconds * 1_000)
        while True:
            await engine.wait_idle()
            nxt = await self.next_due(recurring)
            if nxt is None or nxt > limit:
                return
            if isinstance(self.clock, VirtualClock):
                self.clock.set(nxt)
            else:
                await asyncio.sleep(max(0.0, (nxt - self.clock.now_ms()) / 1_000))

    # In-process testing API (README "The in-process testing API"): what a test harness
    # running the emulator in its own process (the pytest plugin, unittest, behave) may use.

    @property
    def inspector(self) -> Inspector:
        """Messages by state, dead letters, attempts, schedule times and run-now, per user."""
        return self.runtime.inspector

    @property
    def faults(self) -> Faults:
        """The API faults programmed on this emulator (``add``, ``remaining``, ``clear``)."""
        return self.runtime.faults

    @property
    def runs(self) -> Runs:
        """Upstash Workflow runs (``runs.store`` reads their records)."""
        return self.runtime.runs

    @property
    def waits(self) -> Waits:
        """Upstash Workflow waiters: ``notify`` and ``waiters``."""
        return self.runtime.waits

    def on_attempt(self, listener: Callable[[Attempt], None]) -> None:
        """Call ``listener`` with each delivery attempt as it ends (on the server's thread)."""
        self.runtime.engine.listeners.append(listener)

    def on_api_call(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with the user id of each authenticated API call."""
        self.runtime.users.authenticated.append(lambda caller: listener(caller.user_id))

    def bind_token(self, token: str, user_id: str | None, unbound: str = "") -> None:
        """Make ``token`` act for ``user_id``, or for nobody, refused with ``unbound`` as the
        reason (a token that outlives users, standing for whichever test runs)."""
        self.runtime.users.bind_token(token, user_id, unbound)

    def accepts(self, token: str) -> bool:
        """Whether ``token`` names a user right now."""
        try:
            self.runtime.users.authenticate(token, write=False)
        except EmulatorError:
            return False
        return True

    def known_keys(self, user_id: str) -> tuple[str, str]:
        """The user's (current, next) signing keys, rotations included."""
        return self.runtime.keys.known(user_id)

    def remove_user(self, user_id: str) -> None:
        """The user's tokens stop working; its stored data stays (``purge_user``)."""
        self.runtime.remove_user(user_id)

    async def purge_user(self, user_id: str) -> None:
        """Delete everything the user stored."""
        await self.runtime.purge_user(user_id)

    async def flush(self) -> None:
        """Delete every key of this emulator from its store (a Redis shared with others)."""
        await self.runtime.store.flush()

    def mount(self, prefix: str, app: Any, *, wsgi: bool | None = None) -> None:
        """Deliver requests under ``prefix`` into an ASGI (or WSGI) app, in process."""
        self.runtime.router.mount(prefix, app, wsgi=wsgi)

    def rewrite(self, prefix: str, replacement: str) -> None:
        """Send requests under ``prefix`` to ``replacement`` instead (signatures unchanged)."""
        self.runtime.router.rewrite(prefix, replacement)

    def unroute(self, prefix: str) -> None:
        """Drop the mounts and rewrites of ``prefix``."""
        self.runtime.router.remove(prefix)

    def resolve(self, url: str) -> str:
        """Where a delivery to ``url`` is sent, after rewrites."""
        return self.runtime.router.resolve(url)

    def add_responder(self, responder: Responder) -> None:
        """Let ``responder`` answer deliveries before any routing."""
        self.runtime.router.responders.append(responder)

    def keep_local(self, offline: Callable[[str], str] | None) -> None:
        """With ``offline``, a delivery to a host neither local, mounted nor rewritten fails
        at once with the text it gives for the URL; None lets such deliveries go out."""
        self.runtime.router.offline = offline

    @property
    def in_flight(self) -> int:
        """Delivery attempts running now."""
        return self.runtime.engine.in_flight

    async def has_pending(self, user_id: str) -> bool:
        """Whether the user has a message that is not final."""
        return bool(await self.runtime.store.pending_ids(user_id))

    async def idle(self) -> None:
        """Return once nothing is due now and no attempt is running (no clock moves)."""
        await self.runtime.engine.wait_idle()

    async def abort(self) -> None:
        """Drop the attempts in flight; their outcomes are not recorded."""
        await self.runtime.engine.abort()

    async def next_due(self, recurring: bool = True) -> int | None:
        """The earliest time anything is due; schedules, always due again, count only when
        ``recurring``."""
        engine = self.runtime.engine
        if recurring:
            return await engine.next_due()
        times = [await engine.store.next_due()]
        for timer in engine.timers:
            if not getattr(timer, "recurring", False):
                times.append(await timer.next_due())
        known = [t for t in times if t is not None]
        return min(known) if known else None
