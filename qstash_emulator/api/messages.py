"""``/v2/messages``: read and cancel pending messages (docs/behaviour.md#messages)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._errors import BadRequest, NotFound
from .._models import Message
from .._runtime import Runtime
from .._views import message_view
from ._common import caller, int_param, json, json_body, multi, runtime
from ._filters import filter_from_body, filter_from_query

__all__ = ["cancel", "load_visible", "routes"]


async def load_visible(rt: Runtime, user: str, message_id: str) -> Message:
    """The user's message, or 404 once it is gone or past its grace period."""
    msg = await rt.store.get(message_id)
    if msg is None or msg.user != user:
        raise NotFound(f"message {message_id!r} not found")
    grace = int(rt.settings.message_grace_s * 1_000)
    if msg.final_at is not None and msg.final_at + grace < rt.clock.now_ms():
        raise NotFound(f"message {message_id!r} not found")
    return msg


async def cancel(rt: Runtime, msg: Message) -> bool:
    """Cancel a message that is not final. One in flight finishes its attempt, then stops."""
    return await rt.engine.cancel(msg)


async def get_message(request: Request) -> Response:
    who = caller(request)
    msg = await load_visible(runtime(request), who.user_id, request.path_params["messageId"])
    return json(message_view(msg))


async def cancel_one(request: Request) -> Response:
    who = caller(request, write=True)
    rt = runtime(request)
    msg = await load_visible(rt, who.user_id, request.path_params["messageId"])
    if not await cancel(rt, msg):
        already = "being cancelled" if msg.id in rt.engine.cancel_requested else msg.state
        raise NotFound(f"message {msg.id!r} not found: it is already {already}")
    return json({"cancelled": 1})


async def cancel_many(request: Request) -> Response:
    """Bulk cancel by ids or filters, from the query (JS) or a JSON body (Python, Go)."""
    who = caller(request, write=True)
    rt = runtime(request)
    ids = multi(request, "messageIds")
    flt = filter_from_query(request)
    body = await json_body(request, allow_empty=True)
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
    cancelled = 0
    if ids:
        candidates = ids
    else:
        candidates = await rt.store.pending_ids(who.user_id)
    for message_id in candidates:
        if limit is not None and cancelled >= limit:
            break
        msg = await rt.store.get(message_id)
        if msg is None or msg.user != who.user_id:
            continue
        if not ids and not flt.empty and not flt.matches(message_view(msg)):
            continue
        if await cancel(rt, msg):
            cancelled += 1
    return json({"cancelled": cancelled})


routes = [
    Route("/v2/messages/{messageId}", get_message, methods=["GET"]),
    Route("/v2/messages/{messageId}", cancel_one, methods=["DELETE"]),
    Route("/v2/messages", cancel_many, methods=["DELETE"]),
]
