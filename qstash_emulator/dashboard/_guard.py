"""What keeps other web pages out of the dashboard: a Host check and strict response headers.

A page on another origin cannot read the dashboard's answers (no CORS headers are ever sent,
so the browser withholds them) and cannot send its token (no cookie carries authority; the
page keeps the token in memory and sends it as ``Authorization``, which a cross-origin request
can only send after a CORS preflight that fails). What is left is DNS rebinding: a hostile
name that starts resolving to 127.0.0.1 makes the browser treat the dashboard as that name's
own origin. Its requests carry that name in ``Host``, so only names the emulator serves on
are accepted: loopback names, IP literals the bind covers, the bind name itself and the
names given to ``--allowed-hosts``.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import _json
from ..server.hosts import host_allowed

__all__ = ["Guard", "send_error"]

# The page loads only its own files and talks only to its own origin; nothing may frame it.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Guard:
    """Refuses requests with a foreign ``Host``; adds ``HEADERS`` to every answer."""

    def __init__(self, app: ASGIApp, bind: str, names: tuple[str, ...] = ()) -> None:
        self.app = app
        self.bind = bind
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if not host_allowed(host, self.bind, self.names):
            error = (
                f"the dashboard answers only on the addresses it serves on, not Host {host!r} "
                "(a web page may be trying DNS rebinding); open it at http://127.0.0.1:<port>/"
            )
            await send_error(send, 403, error)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def send_error(send: Send, status: int, error: str) -> None:
    """A JSON error answer with the guard's headers, sent before any route runs."""
    body = _json.dumps({"error": error})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in HEADERS.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
