"""The Starlette application: routes from ``api/``, JSON errors, the engine's life cycle."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from .. import _json, dashboard
from .._errors import EmulatorError
from ..api import all_routes
from ..api._browser_guard import BrowserGuard
from ..api._middleware import CloseConnections, FaultMiddleware
from ..store.core import StoreUnavailable
from .masking import mask_secrets
from .runtime import Runtime

__all__ = ["create_app"]

log = logging.getLogger("qstash_emulator")


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(_json.dumps({"error": message}), status, headers, media_type="application/json")


async def _emulator_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EmulatorError)
    return _error(exc.message, exc.status_code, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _error(f"no such endpoint: {request.method} {request.url.path}", 404)
    if exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
        return _error(message, 405, {"Allow": _allowed(request)})
    return _error(str(exc.detail), exc.status_code)


def _allowed(request: Request) -> str:
    """Every method a route of this path takes: the router's own ``Allow`` names only the
    first route that matched the path, and one path may have a route per method."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match != Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods))


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """Redis is down or restarting: the client should try again, and nothing is logged per
    request (the engine logs the outage once)."""
    return _error(f"store unavailable: {exc}", 503, {"Retry-After": "1"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, mask_secrets(request.url.path))
    return _error(f"internal error: {type(exc).__name__}", 500)


def create_app(runtime: Runtime, extra_routes: list[BaseRoute] | None = None) -> Starlette:
    """The API as an ASGI app; the engine starts and stops with it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    routes = [*all_routes(runtime), *dashboard.routes(runtime), *(extra_routes or [])]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            *([] if runtime.settings.keep_alive else [Middleware(CloseConnections)]),
            Middleware(
                BrowserGuard, bind=runtime.settings.host, names=runtime.settings.allowed_hosts
            ),
            Middleware(FaultMiddleware, faults=runtime.faults, users=runtime.users),
        ],
        exception_handlers={
            EmulatorError: _emulator_error,
            HTTPException: _http_error,
            **dict.fromkeys(StoreUnavailable, _store_unavailable),
            Exception: _unexpected,
        },
    )
    return app
