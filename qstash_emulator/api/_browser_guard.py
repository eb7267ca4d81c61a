"""Keeps other web pages from using the API through the developer's browser.

Every dev server shares one well-known token, so a page on any site could send a form POST to
``/v2/...?qstash_token=...`` and act as the developer (the browser withholds the answer, not
the request). Browsers mark requests from other origins with ``Sec-Fetch-Site: cross-site`` or
``same-site`` (another port of localhost is the same site); those are refused. A page of the
emulator's own (``same-origin``) and an address typed into the browser (``none``) pass, and SDKs
and other HTTP clients send no ``Sec-Fetch-*`` header at all. A browser request must also
name a ``Host`` the emulator serves on, which stops DNS rebinding (``_hosts``). Webhook URLs
(``/v2/workflows/hooks/...``) stay open: anything may call them, as in production.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import _json
from .._hosts import host_allowed

__all__ = ["BrowserGuard"]

_OPEN = "/v2/workflows/hooks/"


class BrowserGuard:
    """ASGI middleware refusing browser requests from other origins or rebound names (403)."""

    def __init__(self, app: ASGIApp, bind: str) -> None:
        self.app = app
        self.bind = bind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("path", "").startswith(_OPEN):
            error = _refusal(Headers(scope=scope), self.bind)
            if error is not None:
                body = _json.dumps({"error": error})
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": 403, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _refusal(headers: Headers, bind: str) -> str | None:
    site = headers.get("sec-fetch-site")
    if site is None:
        return None
    if site in ("cross-site", "same-site"):
        return (
            "browser requests from other origins are refused: a page elsewhere may be using "
            f"the emulator's well-known token (Sec-Fetch-Site: {site})"
        )
    host = headers.get("host", "")
    if not host_allowed(host, bind):
        return (
            f"browser requests must name an address the emulator serves on, not Host {host!r} "
            "(a web page may be trying DNS rebinding)"
        )
    return None
