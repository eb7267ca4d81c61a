"""``GET /v2/logs`` and ``GET /v2/events``: one handler, both keys (decisions #2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import _json
from ._common import caller, int_param, json, runtime
from ._filters import filter_from_query, parse_cursor, parse_order

__all__ = ["routes"]


async def list_logs(request: Request) -> Response:
    who = caller(request)
    rt = runtime(request)
    flt = filter_from_query(request)
    count = int_param(request, "count", 100, 1, 1_000) or 100
    cursor = parse_cursor(request)
    rows, nxt = await rt.store.scan_rows(
        rt.store.key(who.user_id, "logs"),
        cursor,
        count,
        parse_order(request),
        lambda row: flt.matches(_json.loads(row), time_key="time"),
    )
    events = [_json.loads(row) for row in rows]
    body: dict[str, object] = {"events": events, "logs": events}
    if nxt:
        body["cursor"] = nxt
    return json(body)


routes = [
    Route("/v2/logs", list_logs, methods=["GET"]),
    Route("/v2/events", list_logs, methods=["GET"]),
]
