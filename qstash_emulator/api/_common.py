"""What every handler needs: the runtime, the caller, query parsing and JSON responses."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import _json
from .._errors import BadRequest
from .._runtime import Caller, Runtime
from ._operations import accepted_query
from ._query import int_param, multi

__all__ = [
    "caller",
    "check_query",
    "caller_ip",
    "empty",
    "int_param",
    "json",
    "json_body",
    "multi",
    "runtime",
]


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def caller(request: Request, write: bool = False) -> Caller:
    """Authenticate by ``Authorization: Bearer`` or ``?qstash_token=``."""
    auth = request.headers.get("authorization")
    token = None
    if auth:
        scheme, _, value = auth.partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    if not token:
        token = request.query_params.get("qstash_token")
    who = runtime(request).authenticate(token, write)
    check_query(request)
    return who


def check_query(request: Request) -> None:
    """An unknown query name is a 400 before anything changes: a mistyped filter must not
    widen a bulk delete, retry or cancel to everything."""
    if not request.scope.get("query_string"):
        return
    state = request.app.state
    table = getattr(state, "accepted_query", None)
    if table is None:
        # The route table lives with the OpenAPI document, so the two cannot disagree; it is
        # built on the first request with a query, keeping it out of start-up.
        table = state.accepted_query = accepted_query(request.app.routes)
    accepted = table.get((request.scope.get("endpoint"), request.method))
    if accepted is None:
        return
    for name in request.query_params:
        if name not in accepted:
            takes = ", ".join(sorted(accepted - {"qstash_token"})) or "no query parameters"
            raise BadRequest(
                f"invalid query parameter {name!r}: {request.method} {request.url.path} "
                f"takes {takes}"
            )


def caller_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def json(data: Any, status: int = 200) -> Response:
    return Response(_json.dumps(data), status, media_type="application/json")


def empty(status: int = 200) -> Response:
    return Response(b"", status)


async def json_body(request: Request, *, allow_empty: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if allow_empty:
            return None
        raise BadRequest("invalid body: expected JSON, got an empty body")
    try:
        return _json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"invalid body: not valid JSON ({exc})") from exc
