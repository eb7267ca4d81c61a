"""An ASGI app served by uvicorn on a background thread, on a port chosen before it starts."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

import uvicorn

# Only the standard library and uvicorn: bench/fixture_cost.py loads this file by path for its
# bare-uvicorn baseline, which must not import the emulator.

__all__ = ["Server", "ThreadedServer", "listen"]

T = TypeVar("T")

log = logging.getLogger("qstash_emulator")


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: any free one); OSError if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets, and without
    # it every response waits out the client's delayed ACK (~40 ms per request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class Server(uvicorn.Server):
    """uvicorn's server, told when it is ready, with a bounded stop and no fixed waits.

    ``on_ready`` is called once the app's start-up is done and the port accepts connections
    (uvicorn listens only after the start-up). On the way out the requests under way and
    ``drain()`` (work of the app's own, such as deliveries under way) get ``drain_s`` seconds
    together (None: uvicorn's ``timeout_graceful_shutdown``); ``drained`` says whether they
    finished. A signal is not raised again on exit, as uvicorn does: the exit status is the
    caller's. uvicorn's fixed waits made every stop take 0.2 s: the main loop wakes when
    ``wake()`` is called (uvicorn looks at ``should_exit`` every 0.1 s), and shutdown waits for
    open connections only while there are some (uvicorn sleeps 0.1 s first whatever is open).
    """

    _wake: asyncio.Event | None = None

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        on_ready: Callable[[], None] | None = None,
        drain: Callable[[], Awaitable[None]] | None = None,
        drain_s: float | None = None,
    ) -> None:
        super().__init__(config)
        self.on_ready = on_ready
        self.drain = drain
        self.drain_s = config.timeout_graceful_shutdown if drain_s is None else drain_s
        self.drained = True
        self.requests_left = 0
        self.signal: int | None = None

    def wake(self) -> None:
        """Look at ``should_exit`` now; called in the server's loop."""
        if self._wake is not None:
            self._wake.set()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGINT or SIGTERM: stop; a second one stops without waiting for what is under way."""
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
        self.signal = sig

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit and self.on_ready is not None:
            self.on_ready()

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            try:
                await asyncio.wait_for(self._wake.wait(), 0.1)
            except TimeoutError:
                pass

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # an idle one closes now, a busy one after its response
        state = self.server_state
        draining = asyncio.ensure_future(self.drain()) if self.drain is not None else None

        def busy() -> bool:
            return bool(state.connections or state.tasks or (draining and not draining.done()))

        try:
            async with asyncio.timeout(self.drain_s):
                while busy() and not self.force_exit:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pass
        if busy():
            self.drained = False
            self.requests_left = len(state.tasks)
            for task in state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if draining is not None:
            if not draining.done():
                draining.cancel()
            await asyncio.gather(draining, return_exceptions=True)
            if not draining.cancelled() and draining.exception() is not None:
                self.drained = False
                log.error("draining failed", exc_info=draining.exception())
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


class ThreadedServer:
    """Serve ``app`` in a daemon thread with its own event loop; use as a context manager.

    The socket is bound in ``__init__``, so ``port`` is known (port 0 picks a
    free one) before the server starts. Extra keyword arguments go to ``uvicorn.Config``.
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "asgi-server",
        **config: Any,
    ) -> None:
        self._sock = listen(host, port)
        self.port: int = self._sock.getsockname()[1]
        options = {"log_level": "warning", "lifespan": "off", "access_log": False, **config}
        # Set by the server's thread once the port accepts connections: start() blocks on it
        # rather than polling, which would take the GIL from that thread every millisecond.
        self._ready = threading.Event()
        self.server = Server(uvicorn.Config(app, **options), on_ready=self._ready.set)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._failure = "its thread ended"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            loop.run_until_complete(self.server.serve(sockets=[self._sock]))
        except SystemExit as exc:  # uvicorn's word for a failed start-up; start() reports it
            self._failure = f"uvicorn exited with status {exc.code}"
        finally:
            loop.close()
            self._sock.close()

    def start(self, timeout: float = 10) -> ThreadedServer:
        """Start serving; returns once the port accepts connections."""
        if self._thread.is_alive() or self.server.started:
            return self
        self._thread.start()
        deadline = time.monotonic() + timeout
        # The thread ends without setting it when the start-up fails: looked at every 20 ms.
        while not self._ready.wait(0.02):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                why = self._failure if not self._thread.is_alive() else f"{timeout}s passed"
                raise RuntimeError(f"{self._thread.name} did not start on port {self.port}: {why}")
        return self

    def stop(self, timeout: float = 10) -> None:
        """Ask the server to exit, and wait for its thread (open connections are closed)."""
        self.server.should_exit = True
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.server.wake)
            except RuntimeError:  # closed meanwhile: the thread has ended
                pass
        if self._thread.is_alive():
            self._thread.join(timeout)
        elif self._thread.ident is None:
            self._sock.close()  # never started

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30) -> T:
        """Run ``coro`` on the server's event loop and wait for its result.

        On ``TimeoutError`` the coroutine is cancelled: work the caller gave up on does not
        go on behind its back.
        """
        if self.loop is None or not self._thread.is_alive():
            coro.close()
            raise RuntimeError(f"{self._thread.name} is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
