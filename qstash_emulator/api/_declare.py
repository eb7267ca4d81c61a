"""How an API module declares its routes: each handler carries its operation (method, path,
query names, body, answers), and the starlette Routes and the OpenAPI document are built from
those declarations, so the two cannot drift.

Every declared route authenticates its caller (401, or 403 for a read-only token's write) and
checks its query names (400) before its handler runs: the order every API answer promises
holds whatever a handler reads first.

A handler names the parts it uses as keyword-only parameters, by the runtime's name for each
(``async def get_message(request, *, messages: Messages)``); ``route_of`` binds them once, when
the app is built, so a handler never reaches the runtime and its signature is all it depends on.

A new route is one ``@api.route(...)`` above its handler in its resource module; its query
names are the constants of the parsers it calls (``model.filters.FILTER_NAMES``...) plus the names
it reads itself (tests/test_declare.py checks both ways). A new resource module declares
``api = Operations()`` and joins ``api._MODULES``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._errors import BadRequest
from ._common import authenticate

if TYPE_CHECKING:
    from ..server.runtime import Runtime

__all__ = ["Endpoint", "Handler", "Operation", "OperationRoute", "Operations", "route_of"]

Endpoint = Callable[[Request], Awaitable[Response]]
# A handler: the request, then the parts it uses, keyword-only (bound by route_of).
Handler = Callable[..., Awaitable[Response]]
_READS = frozenset({"GET", "HEAD"})
# Accepted by every route that checks its query: the token may come this way.
_TOKEN = "qstash_token"


@dataclass(frozen=True)
class Operation:
    """One method of one route: what it takes and answers, beyond its handler's code."""

    method: str
    path: str  # a starlette template: {name}, or {name:path} for a tail with slashes
    summary: str
    handler: Handler
    needs: tuple[str, ...] = ()  # the runtime's parts the handler takes (keyword-only)
    query: tuple[str, ...] = ()  # the only names the route accepts (the parsers' constants)
    body: dict[str, Any] | None = None  # JSON schema of a JSON body
    publish: bool = False  # takes the publish headers and any body; its query is the target's
    schedule: bool = False  # ... plus the schedule-only headers
    status: int = 200
    response: dict[str, Any] | None = None  # JSON schema of the success answer
    tag: str = "qstash"
    open_query: bool = False  # any query: it belongs to the request the route captures
    tokenless: bool = False  # answers without a token by design

    @property
    def accepted_query(self) -> frozenset[str] | None:
        """The query names this operation takes; None when any query is the request's own."""
        if self.publish or self.open_query:
            return None
        return frozenset(self.query) | {_TOKEN}


class Operations:
    """The operations of one API module, in matching order (a more specific path first)."""

    def __init__(self) -> None:
        self.declared: list[Operation] = []

    def route(
        self,
        spec: str,
        summary: str,
        *,
        query: Iterable[str] = (),
        body: dict[str, Any] | None = None,
        publish: bool = False,
        schedule: bool = False,
        status: int = 200,
        response: dict[str, Any] | None = None,
        tag: str = "qstash",
        open_query: bool = False,
        tokenless: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare the decorated handler as ``spec`` (``"GET /v2/x/{id}"``; several methods
        as ``"GET,POST /v2/x"``); a handler may be declared several times (several paths)."""
        methods, _, path = spec.partition(" ")
        contract: dict[str, Any] = {
            "summary": summary,
            "query": tuple(dict.fromkeys(query)),
            "body": body,
            "publish": publish,
            "schedule": schedule,
            "status": status,
            "response": response,
            "tag": tag,
            "open_query": open_query,
            "tokenless": tokenless,
        }

        def declare(handler: Handler) -> Handler:
            # Decorators apply bottom-up: a handler's earlier declaration goes before its later.
            mine = [i for i, op in enumerate(self.declared) if op.handler is handler]
            at = mine[0] if mine else len(self.declared)
            self.declared[at:at] = (
                Operation(
                    method=method, path=path, handler=handler, needs=_needs_of(handler), **contract
                )
                for method in methods.split(",")
            )
            return handler

        return declare


class OperationRoute(Route):
    """A starlette Route built from its operation, which it keeps for the OpenAPI document."""

    def __init__(self, operation: Operation, endpoint: Endpoint) -> None:
        super().__init__(operation.path, endpoint, methods=[operation.method])
        self.operation = operation


def _needs_of(handler: Handler) -> tuple[str, ...]:
    """The parts ``handler`` takes: its keyword-only parameters after the request."""
    params = list(inspect.signature(handler).parameters.values())
    if not params or params[0].kind is not params[0].POSITIONAL_OR_KEYWORD:
        raise TypeError(f"{handler.__qualname__} must take the request first")
    others = [p for p in params[1:] if p.kind is not p.KEYWORD_ONLY]
    if others:
        raise TypeError(
            f"{handler.__qualname__}: {others[0].name} must be keyword-only "
            "(after *): a handler takes the request, then the parts it uses by name"
        )
    return tuple(p.name for p in params[1:])


def route_of(op: Operation, runtime: Runtime) -> OperationRoute:
    """The Route of ``op``: its caller authenticated, then its query names checked, then its
    handler (a tokenless one skips the first, an open query the second), called with the
    runtime's parts it names, bound here once."""
    parts = {}
    for name in op.needs:
        if name.startswith("_") or not hasattr(runtime, name):
            raise TypeError(
                f"{op.handler.__qualname__} takes {name!r}, which the runtime does not hold"
            )
        parts[name] = getattr(runtime, name)
    handler = functools.partial(op.handler, **parts)
    users = runtime.users
    accepted = op.accepted_query

    @functools.wraps(op.handler)
    async def guarded(request: Request) -> Response:
        if not op.tokenless:
            request.state.caller = authenticate(request, request.method not in _READS, users)
        if accepted is not None:
            _check_query(request, accepted)
        return await handler(request)

    return OperationRoute(op, guarded)


def _check_query(request: Request, accepted: frozenset[str]) -> None:
    """An unknown query name is a 400 before anything changes: a mistyped filter must not
    widen a bulk delete, retry or cancel to everything."""
    if not request.scope.get("query_string"):
        return
    for name in request.query_params:
        if name not in accepted:
            takes = ", ".join(sorted(accepted - {_TOKEN})) or "no query parameters"
            raise BadRequest(
                f"invalid query parameter {name!r}: {request.method} {request.url.path} "
                f"takes {takes}"
            )
