"""How a delivery reaches its destination: over HTTP, or into an app mounted in process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ._headers import canonical

if TYPE_CHECKING:
    import aiohttp
    import httpx

__all__ = ["AiohttpTransport", "DeliveryError", "Response", "Router", "Transport"]


@dataclass
class Response:
    """What the destination answered."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    def header_map(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key, value in self.headers:
            out.setdefault(canonical(key), []).append(value)
        return out


class DeliveryError(Exception):
    """The request got no HTTP response: refused, reset, timed out, DNS failure."""

    def __init__(self, reason: str, timeout: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timeout = timeout


class Transport(Protocol):
    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Response: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """Real HTTP. aiohttp, because httpx's AsyncClient is several times slower here."""

    def __init__(self, max_response_bytes: int = 10 << 20) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._max = max_response_bytes

    def _client(self) -> aiohttp.ClientSession:
        # Imported on the first real HTTP delivery: it is a third of the emulator's start-up.
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=60),
                auto_decompress=True,
                skip_auto_headers=("User-Agent", "Content-Type", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Response:
        client = self._client()
        import aiohttp

        try:
            async with asyncio.timeout(timeout_s):
                async with client.request(
                    method, url, headers=headers, data=body or None, allow_redirects=True
                ) as resp:
                    return Response(resp.status, list(resp.headers.items()), await self._body(resp))
        except TimeoutError as exc:
            raise DeliveryError(f"timeout after {timeout_s:g}s", timeout=True) from exc
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    async def _body(self, resp: aiohttp.ClientResponse) -> bytes:
        """The whole body (up to the cap): a reset or a stall mid-body fails the attempt."""
        data = bytearray()
        while len(data) < self._max:
            chunk = await resp.content.read(self._max - len(data))
            if not chunk:
                break
            data += chunk
        return bytes(data)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


@dataclass
class _Mount:
    prefix: str
    transport: httpx.AsyncBaseTransport


class Router:
    """Rewrites destinations and routes mounted prefixes in process; the rest goes over HTTP."""

    def __init__(self, fallback: Transport) -> None:
        self.fallback = fallback
        self._mounts: list[_Mount] = []
        self._rewrites: list[tuple[str, str]] = []

    def mount(self, prefix: str, app: Any, *, wsgi: bool = False) -> None:
        """Deliver requests whose URL starts with ``prefix`` to an ASGI (or WSGI) app."""
        if wsgi:
            from a2wsgi import WSGIMiddleware

            app = WSGIMiddleware(app)
        import httpx  # only in-process delivery needs it; keeps it out of start-up

        self._mounts.append(_Mount(prefix.rstrip("/"), httpx.ASGITransport(app=app)))

    def rewrite(self, prefix: str, replacement: str) -> None:
        """Send requests for ``prefix...`` to ``replacement...`` instead (signature unchanged)."""
        self._rewrites.append((prefix.rstrip("/"), replacement.rstrip("/")))

    def remove(self, prefix: str) -> None:
        """Drop the mounts and rewrites of ``prefix`` (one test's, on a shared emulator)."""
        prefix = prefix.rstrip("/")
        self._mounts = [m for m in self._mounts if m.prefix != prefix]
        self._rewrites = [r for r in self._rewrites if r[0] != prefix]

    def clear(self) -> None:
        self._mounts.clear()
        self._rewrites.clear()

    def resolve(self, url: str) -> str:
        for prefix, replacement in self._rewrites:
            if url.startswith(prefix):
                return replacement + url[len(prefix) :]
        return url

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Response:
        target = self.resolve(url)
        for mount in self._mounts:
            if target.startswith(mount.prefix):
                return await _send_asgi(mount.transport, method, target, headers, body, timeout_s)
        return await self.fallback.send(method, target, headers, body, timeout_s)

    async def close(self) -> None:
        await self.fallback.close()


async def _send_asgi(
    transport: httpx.AsyncBaseTransport,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    timeout_s: float,
) -> Response:
    import httpx

    request = httpx.Request(method, url, headers=headers, content=body)
    try:
        response = await asyncio.wait_for(transport.handle_async_request(request), timeout_s)
        data = await asyncio.wait_for(response.aread(), timeout_s)
    except TimeoutError as exc:
        raise DeliveryError(f"timeout after {timeout_s:g}s", timeout=True) from exc
    except Exception as exc:  # an app that raises is a 500 to QStash, not a crash here
        return Response(500, [("content-type", "text/plain")], repr(exc).encode())
    return Response(response.status_code, list(response.headers.multi_items()), data)
