"""Bounds on the server's connections: how many may be open, and how long a request's headers
may take to arrive (docs/behaviour.md#connections).

uvicorn closes a connection left idle after an answer (its keep-alive timeout), but not one
that never sends a request, nor one that sends its headers a byte at a time, and it accepts
connections until the process runs out of file descriptors: then every accept fails and is
logged. Here, a connection past the limit is closed as soon as it is accepted (logged once
until the count falls back), and one whose request headers are not all there
``header_timeout_s`` after it opened or after its previous answer is closed.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

# Only the standard library and uvicorn, like ``server.serving``.

__all__ = [
    "MAX_HEADER_BYTES",
    "connection_cap",
    "limited_protocol",
    "raise_file_limit",
    "uvicorn_options",
]

log = logging.getLogger("qstash_emulator")

# Request line and headers together; h11 refuses more than 16 KiB already, httptools nothing.
MAX_HEADER_BYTES = 64 << 10


def raise_file_limit() -> None:
    """Let the process open as many files as the system allows it (the soft limit up to the
    hard one, as Go programs do), so that the connection limit is what bounds connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
        except (ValueError, OSError):
            pass  # kept as it was: the cap below adapts to it


def connection_cap(wanted: int) -> int:
    """``wanted``, or half the files the process may open if that is fewer: deliveries, Redis
    and the server's own files need the rest, and an accept that fails for want of a file
    descriptor is what this limit is there to prevent."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if soft == resource.RLIM_INFINITY else max(1, min(wanted, soft // 2))


def uvicorn_options(max_connections: int, header_timeout_s: float) -> dict[str, Any]:
    """What ``uvicorn.Config`` takes to apply these bounds. The backlog matters too: asyncio
    accepts up to that many connections at once before any of them is seen, let alone closed,
    so it is kept to a quarter of the files the process may open.

    No WebSocket protocol: QStash has no WebSocket route, and uvicorn's default imports a
    WebSocket library (wsproto with h11: a tenth of the emulator's start-up) to serve none.
    An upgrade request is then answered as the plain HTTP request it also is."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    backlog = 2048 if soft == resource.RLIM_INFINITY else max(16, min(2048, soft // 4))
    return {
        "http": limited_protocol(max_connections, header_timeout_s),
        "backlog": backlog,
        "ws": "none",
    }


class _OnceWhileExhausted(logging.Filter):
    """asyncio logs every accept that fails for want of file descriptors, with a traceback,
    many times a second: let the first of a run through, until an accept succeeds again."""

    quiet = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("socket.accept() out of system resource"):
            return True
        if self.quiet:
            return False
        self.quiet = True
        record.exc_info = None  # one line, not one traceback per accept
        record.msg = (
            "cannot accept connections: the process is out of file descriptors (logged once "
            "until a connection is accepted again)"
        )
        record.args = ()
        return True


_exhausted = _OnceWhileExhausted()


def limited_protocol(
    max_connections: int, header_timeout_s: float, base: Any = AutoHTTPProtocol
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools, or h11 without it) with these bounds; the limit is
    at most ``connection_cap``."""
    cap = connection_cap(max_connections)
    full = False  # the limit was reached and logged, and the count has not fallen back since
    if _exhausted not in logging.getLogger("asyncio").filters:
        logging.getLogger("asyncio").addFilter(_exhausted)

    class Limited(base):  # type: ignore[misc]
        _timer: asyncio.TimerHandle | None = None
        _waiting_for: object = None  # the request cycle that was current when the timer started
        _header_bytes = 0
        _deadline = 0.0  # loop time by which the next request's headers must be complete

        def connection_made(self, transport: asyncio.Transport) -> None:
            nonlocal full
            super().connection_made(transport)
            if len(self.connections) > cap:
                if not full:
                    full = True
                    log.warning(
                        "%d connections are open, the limit (--max-connections): new ones are "
                        "closed as they arrive until some end",
                        cap,
                    )
                transport.abort()
                return
            _exhausted.quiet = False
            self._start_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            nonlocal full
            self._stop_timer()
            super().connection_lost(exc)
            if full and len(self.connections) <= cap * 9 // 10:
                full = False
                log.warning("connections are below the limit again (--max-connections)")

        def data_received(self, data: bytes) -> None:
            waiting = self._timer is not None and self.cycle is self._waiting_for
            super().data_received(data)
            if waiting and self.cycle is self._waiting_for:  # the headers are still incomplete
                self._header_bytes += len(data)
                if self._header_bytes > MAX_HEADER_BYTES:
                    self._close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._start_timer()  # the next request's headers have the same time

        def _start_timer(self) -> None:
            # Every answer starts the time over. Moving the deadline is cheaper than a new
            # timer each time (a cancel and a call_later for each of thousands of answers a
            # second): a timer that comes due before the deadline waits on for it.
            self._waiting_for = self.cycle
            self._header_bytes = 0
            self._deadline = self.loop.time() + header_timeout_s
            if self._timer is None:
                self._timer = self.loop.call_at(self._deadline, self._timed_out)

        def _stop_timer(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _timed_out(self) -> None:
            if self.loop.time() < self._deadline:  # started over since this timer was set
                self._timer = self.loop.call_at(self._deadline, self._timed_out)
                return
            self._timer = None
            if self.cycle is self._waiting_for:  # no request began since the time started
                self._close()

        def _close(self) -> None:
            self._stop_timer()
            if not self.transport.is_closing():
                self.transport.close()

    return Limited
