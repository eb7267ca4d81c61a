"""``/v2/messages``: read and cancel pending messages (docs/behaviour.md#messages)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .._errors import BadRequest
from ..model.views import message_view
from ..server.config import Settings
from ..services.messages import Messages
from ._common import caller, int_param, json, json_body, multi
from ._declare import Operations
from ._filters import DESTINATION_NAMES, FILTER_NAMES, filter_from_body, filter_from_query
from ._schemas import ids_or_filters

__all__ = ["api"]

api = Operations()


@api.route("GET /v2/messages/{messageId}", "A message that is not yet final")
async def get_message(request: Request, *, messages: Messages) -> Response:
    who = caller(request)
    msg = await messages.get(who.user_id, request.path_params["messageId"])
    return json(message_view(msg))


@api.route("DELETE /v2/messages/{messageId}", "Cancel one message")
async def cancel_one(request: Request, *, messages: Messages) -> Response:
    who = caller(request)
    await messages.cancel(who.user_id, request.path_params["messageId"])
    return json({"cancelled": 1})


@api.route(
    "DELETE /v2/messages",
    "Cancel messages by id or filter",
    query=("messageIds", "count", *FILTER_NAMES, *DESTINATION_NAMES),
    body=ids_or_filters("messageIds"),
)
async def cancel_many(request: Request, *, messages: Messages, settings: Settings) -> Response:
    """Bulk cancel by ids or filters, from the query (JS) or a JSON body (Python, Go)."""
    who = caller(request)
    ids = multi(request, "messageIds")
    flt = filter_from_query(request, destination=True)
    body = await json_body(request, settings, allow_empty=True)
    if body is not None:
        if not isinstance(body, dict):
            raise BadRequest('invalid body: expected a JSON object such as {"messageIds": [...]}')
        raw_ids = body.get("messageIds") or []
        if not isinstance(raw_ids, list) or not all(isinstance(i, str) for i in raw_ids):
            raise BadRequest("invalid messageIds: expected a list of strings")
        ids.extend(raw_ids)
        if flt.empty:
            flt = filter_from_body(body)
    limit = int_param(request, "count", None, 1, 500)
    cancelled = await messages.cancel_many(who.user_id, ids, flt, limit)
    return json({"cancelled": cancelled})
