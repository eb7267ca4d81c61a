"""``GET /_emulator/health``: the readiness probe, open without a token (docs/ci.md#the-probe).

It answers once the server is up and its store answers; a store that does not is a 503 (the
app's handler for an unavailable store). Programmed faults never reach ``/_emulator/``.
"""

from __future__ import annotations

import functools
import time
from importlib.metadata import version

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._common import check_query, json, runtime, tokenless

__all__ = ["NAME", "routes"]

# What a client checks to know it reached an emulator, not something else on the port.
NAME = "qstash-emulator"


@functools.cache
def _version() -> str:
    return version(NAME)


@tokenless
async def health(request: Request) -> Response:
    """Ready: version, store and uptime; no token, and nothing about any user."""
    check_query(request)
    rt = runtime(request)
    await rt.store.ping()
    return json(
        {
            "status": "ok",
            "emulator": NAME,
            "version": _version(),
            "store": "redis" if rt.settings.redis_url else "memory",
            "uptimeMs": int((time.monotonic() - rt.started_at) * 1_000),
        }
    )


routes = [Route("/_emulator/health", health, methods=["GET"])]
