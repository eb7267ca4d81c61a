"""The official Python SDK's clients, as the fixture hands them out.

The SDK (qstash 3.x) builds its own httpx client and gives no way to close it, or to say how
it pools connections: this module is the one place that knows where a client keeps it. When
an SDK keeps it elsewhere, ``close`` does nothing and the connections close with the
emulator; ``tests/test_plugin_apps.py`` shows when that happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from qstash import AsyncQStash, QStash

__all__ = ["close", "is_closed", "new_async_client", "new_client"]


def _http(client: Any) -> httpx.Client | httpx.AsyncClient | None:
    found = getattr(getattr(client, "http", None), "_client", None)
    return found if isinstance(found, httpx.Client | httpx.AsyncClient) else None


def new_client(token: str, url: str, **kwargs: Any) -> QStash:
    from qstash import QStash

    return QStash(token, base_url=url, **kwargs)


def new_async_client(token: str, url: str, **kwargs: Any) -> AsyncQStash:
    """An async client that keeps no connection open between requests: its connections
    belong to the test's event loop, which is gone by the time the fixture could close them
    (an idle one would warn of an unclosed socket when collected, during a later test)."""
    from qstash import AsyncQStash

    client = AsyncQStash(token, base_url=url, **kwargs)
    http = _http(client)
    if isinstance(http, httpx.AsyncClient):
        client.http._client = httpx.AsyncClient(
            timeout=http.timeout, limits=httpx.Limits(max_keepalive_connections=0)
        )
    return client


def close(client: QStash) -> None:
    """Close the connections a sync client holds."""
    http = _http(client)
    if isinstance(http, httpx.Client):
        http.close()


def is_closed(client: QStash) -> bool:
    """Whether the client was closed (by a test, or by ``close``)."""
    http = _http(client)
    return http is not None and http.is_closed
