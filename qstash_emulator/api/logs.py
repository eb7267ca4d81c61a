"""``GET /v2/logs`` and ``GET /v2/events``: one handler, both keys (docs/behaviour.md#logs)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._common import caller, int_param, json, runtime
from ._filters import filter_from_query, parse_cursor, parse_order

__all__ = ["routes"]


async def list_logs(request: Request) -> Response:
    who = caller(request)
    flt = filter_from_query(request)
    count = int_param(request, "count", 100, 1, 1_000) or 100
    events, nxt = await runtime(request).logs.page(
        who.user_id, flt, parse_cursor(request), count, parse_order(request)
    )
    body: dict[str, object] = {"events": events, "logs": events}
    if nxt:
        body["cursor"] = nxt
    return json(body)


routes = [
    Route("/v2/logs", list_logs, methods=["GET"]),
    Route("/v2/events", list_logs, methods=["GET"]),
]
