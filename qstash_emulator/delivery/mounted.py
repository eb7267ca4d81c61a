"""Apps mounted in process: deliveries reach an ASGI or WSGI app without a socket.

A mounted app never runs on the emulator's event loop. A handler that calls the emulator
with a blocking client (the official SDK's ``QStash`` inside an ``async def`` view, as works
in production) would otherwise stop the loop that has to answer it. ASGI apps share one
event loop in a thread of its own (so app state bound to a loop survives from one delivery
to the next); WSGI apps run in worker threads, one request each, as a threaded server does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from typing import TYPE_CHECKING, Any

from ..model.wire import wire_url
from .transport import DeliveryError, Response

if TYPE_CHECKING:
    import httpx

__all__ = ["AppThreads", "MountedApp", "is_wsgi"]

# A WSGI handler blocked on I/O holds a worker; this many may wait at once.
_WSGI_WORKERS = 32
# After an ASGI delivery is given up on, how long the app loop has to act on the cancel before
# it counts as stuck (a handler that never yields) and the next delivery gets a fresh loop.
_CANCEL_GRACE_S = 0.5


def is_wsgi(app: Any) -> bool:
    """Guess the interface: ASGI apps are coroutine functions (or objects whose call is)."""
    call = app if inspect.isroutine(app) else type(app).__call__
    return not inspect.iscoroutinefunction(call)


class AppThreads:
    """Where mounted apps run: an event loop in a daemon thread for ASGI apps, a pool of
    worker threads for WSGI requests; each started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._cancelled: list[threading.Event] = []
        self._lock = threading.Lock()

    def run(self, call: Any, *args: Any) -> concurrent.futures.Future[Any]:
        """Run a blocking ``call(*args)`` in a worker thread."""
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    _WSGI_WORKERS, thread_name_prefix="qstash-emulator-wsgi"
                )
            return self._pool.submit(call, *args)

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=_serve, args=(loop,), name="qstash-emulator-apps", daemon=True
                ).start()
                self._loop = loop
            return self._loop

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._running())

    def cancelled(self, ended: threading.Event) -> None:
        """Note an ASGI call given up on; ``ended`` is set once its task has stopped."""
        with self._lock:
            self._cancelled.append(ended)

    async def check(self) -> None:
        """Before an ASGI call: a loop that has not acted on an earlier cancel within a grace
        period is stuck in a handler that never yields, and would hold this call too; it is
        given up, and this call gets a fresh one."""
        for _ in range(int(_CANCEL_GRACE_S / 0.01)):
            with self._lock:
                self._cancelled = [e for e in self._cancelled if not e.is_set()]
                if not self._cancelled:
                    return
            await asyncio.sleep(0.01)
        self.abandon()

    def abandon(self) -> None:
        """Give up on a loop that did not honour a cancel: later calls get a fresh one."""
        with self._lock:
            loop, self._loop = self._loop, None
            self._cancelled = []
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
            pool, self._pool = self._pool, None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if pool is not None:
            pool.shutdown(wait=False)


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


class MountedApp:
    """One app mounted at a prefix; ``send`` delivers a request to it and reads the answer."""

    def __init__(self, app: Any, wsgi: bool, threads: AppThreads) -> None:
        import httpx  # only in-process delivery needs it; keeps it out of start-up

        self.app = app
        self.wsgi = wsgi
        self._threads = threads
        self._asgi = None if wsgi else httpx.ASGITransport(app=app)
        self._wsgi = httpx.WSGITransport(app=app) if wsgi else None

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Response:
        import httpx

        request = httpx.Request(method, _as_written(url), headers=headers, content=body)
        ended = threading.Event()
        if self._wsgi is not None:
            future = self._threads.run(_call_wsgi, self._wsgi, request)
        else:
            assert self._asgi is not None
            await self._threads.check()
            future = self._threads.submit(_call_asgi(self._asgi, request, ended))
        try:
            async with asyncio.timeout(timeout_s):
                answer: Response = await asyncio.wrap_future(future)
                return answer
        except TimeoutError as exc:
            raise DeliveryError.timed_out(timeout_s) from exc
        finally:
            if self._asgi is not None and not ended.is_set():
                self._threads.cancelled(ended)  # timed out, or its caller was cancelled


def _as_written(url: str) -> httpx.URL:
    """``url`` with its path as written: httpx removes dot segments (``/x/../admin``), which a
    server receives as sent, and production sends them."""
    import httpx

    parsed = httpx.URL(url)
    path = wire_url(url).raw_path
    if parsed.raw_path.split(b"?")[0] != path.encode():
        # httpx has no public way to keep them; its parsed form is a NamedTuple.
        parsed._uri_reference = parsed._uri_reference._replace(path=path)
    return parsed


def _answer(status: int, headers: list[tuple[str, str]], body: bytes) -> Response:
    return Response(status, headers, body)


def _failed(exc: BaseException) -> Response:
    # An app that raises is a 500 to QStash, as a server in front of it would answer.
    return Response(500, [("content-type", "text/plain")], repr(exc).encode())


async def _call_asgi(
    transport: httpx.ASGITransport, request: httpx.Request, ended: threading.Event
) -> Response:
    try:
        response = await transport.handle_async_request(request)
        data = await response.aread()
    except Exception as exc:
        return _failed(exc)
    finally:
        ended.set()
    return _answer(response.status_code, list(response.headers.multi_items()), data)


def _call_wsgi(transport: httpx.WSGITransport, request: httpx.Request) -> Response:
    try:
        response = transport.handle_request(request)
        data = response.read()
    except Exception as exc:
        return _failed(exc)
    return _answer(response.status_code, list(response.headers.multi_items()), data)
