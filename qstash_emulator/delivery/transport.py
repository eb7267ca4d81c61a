"""A delivery over the network, and what every way of delivering answers or raises."""

from __future__ import annotations

import asyncio
import contextlib
import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from ..model.sendable import canonical
from ..model.wire import wire_url

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport", "DeliveryError", "Response", "Transport"]


@dataclass
class Response:
    """What the destination answered."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    _map: dict[str, list[str]] | None = field(default=None, init=False, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    def header_map(self) -> dict[str, list[str]]:
        """The headers by canonical name (made once: the log row, the callback and the
        recorded attempt each show them)."""
        if self._map is None:
            self._map = {}
            for key, value in self.headers:
                self._map.setdefault(canonical(key), []).append(value)
        return self._map


class DeliveryError(Exception):
    """The request got no HTTP response: refused, reset, timed out, DNS failure."""

    def __init__(self, reason: str, timeout: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timeout = timeout

    @classmethod
    def timed_out(cls, timeout_s: float) -> DeliveryError:
        """No complete answer within ``timeout_s`` seconds."""
        return cls(f"timeout after {timeout_s:g}s", timeout=True)

    @classmethod
    def refused(cls, url: str) -> DeliveryError:
        """Nothing listens where ``url`` points: what a refused connection records."""
        return cls(refused(address(url)))


class Transport(Protocol):
    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Response: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """Real HTTP. aiohttp, because httpx's AsyncClient is several times slower here.

    One request per call: redirects come back as answers, for the router to follow.
    """

    def __init__(self, max_response_bytes: int = 10 << 20) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._max = max_response_bytes

    async def warm(self) -> None:
        """Do now, in the background, what the first delivery would wait for: import aiohttp
        (in a thread: it is a third of the emulator's start-up, so it is not imported before
        serving) and load the resolver's libraries."""
        import importlib

        # The session itself is cheap, and made at the first delivery: a test that swaps the
        # transport for its own would otherwise leave it unclosed.
        await asyncio.to_thread(importlib.import_module, "aiohttp")
        with contextlib.suppress(OSError):
            await asyncio.get_running_loop().getaddrinfo("localhost", 80)

    def _client(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=60),
                # No timer of aiohttp's own (5 min in all, 30 s to connect by default, one
                # scheduled per request): each send is bounded by its attempt's timeout.
                timeout=aiohttp.ClientTimeout(),
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
                    method, wire_url(url), headers=headers, data=body or None, allow_redirects=False
                ) as resp:
                    return Response(resp.status, list(resp.headers.items()), await self._body(resp))
        except TimeoutError as exc:
            raise DeliveryError.timed_out(timeout_s) from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise DeliveryError(unanswered(exc, url)) from exc

    async def _body(self, resp: aiohttp.ClientResponse) -> bytes:
        """The first bytes of the body (up to the cap), once the whole body has arrived: the
        rest is read and dropped, so an endless body, or a reset or stall mid-body, fails
        the attempt (docs/behaviour.md#delivery)."""
        data = bytearray()
        while True:
            chunk = await resp.content.readany()
            if not chunk:
                return bytes(data)
            if len(data) < self._max:
                data += chunk[: self._max - len(data)]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def address(url: str) -> str:
    """The ``host:port`` a URL's request goes to (the scheme's port when none is written)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return parts.netloc
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def refused(where: str) -> str:
    """The error of an attempt that nothing listened for at ``where`` (host:port)."""
    return f"connection refused by {where}"


def unanswered(exc: BaseException, url: str) -> str:
    """Why a request to ``url`` got no answer, in words rather than the HTTP client's own
    ("connection refused by 127.0.0.1:9", not "ClientConnectorError: Cannot connect to host
    127.0.0.1:9 ssl:default [Connect call failed ...]"): the text every view of the attempt
    shows, from the log row and the dead letter to the dashboard and the test fixtures."""
    import aiohttp

    where = address(url)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"{urlsplit(url).hostname} does not resolve ({exc.os_error.strerror})"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"the TLS certificate of {where} is not trusted ({exc.certificate_error})"
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return f"TLS with {where} failed ({exc})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{where} closed the connection without answering"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"{where} broke off its answer before the end of the body"
    if isinstance(exc, aiohttp.ClientResponseError):  # what came back does not parse as HTTP
        first = str(exc.message).strip().splitlines()[0].rstrip(":")
        return f"{where} answered something that is not HTTP ({first})"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL {url}"
    code = exc.errno if isinstance(exc, OSError) else None
    if code == errno.ECONNREFUSED:
        return refused(where)
    if code == errno.ECONNRESET:
        return f"connection reset by {where}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot reach {where} ({exc.strerror})"
    return f"{type(exc).__name__}: {exc}"
