"""Keeps other web pages from using the API through the developer's browser.

Every dev server shares one well-known token, so a page on any site could send a form POST to
``/v2/...?qstash_token=...`` and act as the developer (the browser withholds the answer, not
the request). Browsers mark requests from other origins with ``Sec-Fetch-Site: cross-site`` or
``same-site`` (another port of localhost is the same site); those are refused. A page of the
emulator's own (``same-origin``) and an address typed into the browser (``none``) pass, and SDKs
and other HTTP clients send no ``Sec-Fetch-*`` header at all.

DNS rebinding needs a rule of its own: a page on a name that starts resolving to 127.0.0.1 is
that name's own origin, and a browser sends no ``Sec-Fetch-*`` header to plain http on it.
What it cannot change is the ``Host`` its requests carry, so every request must name a
``Host`` the emulator serves on (``server.hosts``), browser or not. Webhook URLs
(``/v2/workflows/hooks/...``) stay open: anything may call them, by any name, as in
production. The dashboard's routes have their own guard (``dashboard._guard``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .. import _json
from ..server.hosts import host_allowed

__all__ = ["BrowserGuard"]

_OPEN = "/v2/workflows/hooks/"
_HOSTS_KEPT = 256


def _dashboard(path: str) -> bool:
    return path == "/" or path.startswith("/_dashboard/")


class BrowserGuard:
    """ASGI middleware refusing a foreign ``Host`` and browser requests from other origins
    (403)."""

    def __init__(self, app: ASGIApp, bind: str, names: tuple[str, ...] = ()) -> None:
        self.app = app
        self.bind = bind
        self.names = names
        # Host headers already judged: a server is reached by a few names, so most requests
        # are a dictionary look-up here (bounded: anything may be sent as Host).
        self._hosts: dict[bytes, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and not path.startswith(_OPEN) and not _dashboard(path):
            error = self._refusal(scope)
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

    def _refusal(self, scope: Scope) -> str | None:
        host = site = None
        for name, value in scope["headers"]:  # ASGI header names are lower case
            if name == b"host" and host is None:
                host = value
            elif name == b"sec-fetch-site" and site is None:
                site = value
        if not self._host_allowed(host or b""):
            shown = (host or b"").decode("latin-1")
            return (
                f"the API answers only on the addresses it serves on, not Host {shown!r} (a web "
                "page may be trying DNS rebinding); reach it as 127.0.0.1 or localhost, or add "
                "the name with --allowed-hosts"
            )
        if site in (b"cross-site", b"same-site"):
            return (
                "browser requests from other origins are refused: a page elsewhere may be "
                f"using the emulator's well-known token (Sec-Fetch-Site: {site.decode()})"
            )
        return None

    def _host_allowed(self, host: bytes) -> bool:
        allowed = self._hosts.get(host)
        if allowed is None:
            allowed = host_allowed(host.decode("latin-1"), self.bind, self.names)
            if len(self._hosts) >= _HOSTS_KEPT:
                self._hosts.clear()
            self._hosts[host] = allowed
        return allowed
