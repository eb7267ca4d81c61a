"""``GET /_emulator/health``: the readiness probe, open without a token (docs/ci.md#the-probe).

It answers once the server is up and its store answers; a store that does not is a 503 (the
app's handler for an unavailable store). Programmed faults never reach ``/_emulator/``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import version

from starlette.requests import Request
from starlette.responses import Response

from ..server.config import Settings
from ..store.core import Store
from ._common import json
from ._declare import Operations
from ._schemas import STR

__all__ = ["NAME", "api"]

api = Operations()

# What a client checks to know it reached an emulator, not something else on the port.
NAME = "qstash-emulator"


@functools.cache
def _version() -> str:
    return version(NAME)


@api.route(
    "GET /_emulator/health",
    "Readiness probe, no token: version, store, uptime",
    tag="emulator",
    tokenless=True,
    response={
        "type": "object",
        "required": ["status", "emulator", "version", "store", "uptimeMs"],
        "properties": {
            "status": {"const": "ok"},
            "emulator": {"const": NAME},
            "version": STR,
            "store": {"enum": ["memory", "redis"]},
            "uptimeMs": {"type": "integer", "minimum": 0},
        },
    },
)
async def health(
    request: Request, *, store: Store, settings: Settings, uptime_ms: Callable[[], int]
) -> Response:
    """Ready: version, store and uptime; no token, and nothing about any user."""
    await store.ping()
    return json(
        {
            "status": "ok",
            "emulator": NAME,
            "version": _version(),
            "store": "redis" if settings.redis_url else "memory",
            "uptimeMs": uptime_ms(),
        }
    )
