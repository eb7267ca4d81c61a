"""Where a delivery goes: a responder's answer, an app mounted in process, a rewritten
address, or the network; redirects are followed the same way whichever it is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..server.hosts import is_loopback
from .mounted import AppThreads, MountedApp, is_wsgi
from .redirects import Hop, next_hop
from .transport import DeliveryError, Response, Transport

__all__ = ["Responder", "Router"]


class Responder(Protocol):
    """Answers some deliveries itself, before any routing (the pytest plugin's scripts)."""

    async def respond(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Response | None:
        """The answer for this request, or None to let it go on its way."""
        ...


@dataclass
class _Mount:
    prefix: str
    app: MountedApp


def _under(url: str, prefix: str) -> bool:
    return url.startswith(prefix) and url[len(prefix) : len(prefix) + 1] in ("", "/", "?", "#")


class Router:
    """Routes each delivery, hop by hop when the destination redirects."""

    def __init__(self, fallback: Transport) -> None:
        self.fallback = fallback
        self._mounts: list[_Mount] = []
        self._rewrites: list[tuple[str, str]] = []
        self._threads = AppThreads()
        self.responders: list[Responder] = []
        # When set, a delivery to a host that is neither loopback, mounted nor rewritten fails
        # at once with the text this returns for its URL, instead of using the network.
        self.offline: Callable[[str], str] | None = None

    async def warm(self) -> None:
        """Warm the network transport for the first delivery (see ``AiohttpTransport.warm``)."""
        warm = getattr(self.fallback, "warm", None)
        if warm is not None:
            await warm()

    def mount(self, prefix: str, app: Any, *, wsgi: bool | None = None) -> None:
        """Deliver requests whose URL starts with ``prefix`` to an ASGI (or WSGI) app."""
        app_wsgi = is_wsgi(app) if wsgi is None else wsgi
        self._mounts.append(_Mount(prefix.rstrip("/"), MountedApp(app, app_wsgi, self._threads)))

    def rewrite(self, prefix: str, replacement: str) -> None:
        """Send requests for ``prefix...`` to ``replacement...`` instead (signature unchanged)."""
        self._rewrites.append((prefix.rstrip("/"), replacement.rstrip("/")))

    def remove(self, prefix: str) -> None:
        """Drop the mounts and rewrites of ``prefix`` (one test's, on a shared emulator)."""
        prefix = prefix.rstrip("/")
        self._mounts = [m for m in self._mounts if m.prefix != prefix]
        self._rewrites = [r for r in self._rewrites if r[0] != prefix]

    def reset(self) -> None:
        """Drop every mount and rewrite."""
        self._mounts.clear()
        self._rewrites.clear()

    def forget_user(self, user: str) -> None:
        """Mounts and rewrites are the emulator's, not a user's: nothing to forget."""

    def resolve(self, url: str) -> str:
        """Where a request for ``url`` is sent, after rewriting."""
        for prefix, replacement in self._rewrites:
            if _under(url, prefix):
                return replacement + url[len(prefix) :]
        return url

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Response:
        """The final answer, after any redirects; ``timeout_s`` covers them all."""
        hop = Hop(method, url, headers, body)
        followed = 0
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    response = await self._send_once(hop, timeout_s)
                    following = next_hop(hop, response, followed)
                    if following is None:
                        return response
                    hop, followed = following, followed + 1
        except TimeoutError as exc:
            raise DeliveryError.timed_out(timeout_s) from exc

    async def _send_once(self, hop: Hop, timeout_s: float) -> Response:
        method, url, headers, body = hop.method, hop.url, hop.headers, hop.body
        for responder in self.responders:
            answer = await responder.respond(method, url, headers, body, timeout_s)
            if answer is not None:
                return answer
        target = self.resolve(url)
        for mount in self._mounts:
            if _under(target, mount.prefix):
                return await mount.app.send(method, target, headers, body, timeout_s)
        if self.offline is not None and not is_loopback(urlsplit(target).hostname or ""):
            raise DeliveryError(self.offline(target))
        return await self.fallback.send(method, target, headers, body, timeout_s)

    async def close(self) -> None:
        self._threads.close()
        await self.fallback.close()
