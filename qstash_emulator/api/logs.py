"""``GET /v2/logs`` and ``GET /v2/events``: one handler, both keys (docs/behaviour.md#logs)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..services.logs import Logs
from ._common import caller, int_param, json
from ._declare import Operations
from ._filters import (
    DESTINATION_NAMES,
    FILTER_NAMES,
    PAGE_NAMES,
    filter_from_query,
    parse_cursor,
    parse_order,
)

__all__ = ["api"]

api = Operations()
_QUERY = (*PAGE_NAMES, *FILTER_NAMES, *DESTINATION_NAMES)


@api.route("GET /v2/logs", "Log rows, one per state change", query=_QUERY)
@api.route("GET /v2/events", "Log rows (the name the SDKs call)", query=_QUERY)
async def list_logs(request: Request, *, logs: Logs) -> Response:
    who = caller(request)
    flt = filter_from_query(request, destination=True)
    count = int_param(request, "count", 100, 1, 1_000) or 100
    events, nxt = await logs.page(
        who.user_id, flt, parse_cursor(request), count, parse_order(request)
    )
    body: dict[str, object] = {"events": events, "logs": events}
    if nxt:
        body["cursor"] = nxt
    return json(body)
