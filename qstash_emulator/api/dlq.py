"""``/v2/dlq``: dead letters, listed, read, deleted and retried (docs/behaviour.md#dead-letters)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._dead_letters import view
from .._errors import BadRequest
from .._models import DeadLetter
from . import workflow_dlq
from ._common import caller, int_param, json, json_body, multi, runtime
from ._filters import filter_from_body, filter_from_query, parse_cursor, parse_order

__all__ = ["routes"]


async def list_dlq(request: Request) -> Response:
    """Every dead letter; ``source=workflow`` lists only those of workflow runs, with their
    run's fields (as ``GET /v2/workflows/dlq``)."""
    source = request.query_params.get("source")
    if source == "workflow":
        return await workflow_dlq.list_entries(request)
    if source is not None:
        raise BadRequest(f"invalid source: {source!r}, only workflow is supported")
    who = caller(request)
    flt = filter_from_query(request)
    count = int_param(request, "count", 100, 1, 100) or 100
    letters, cursor = await runtime(request).dead_letters.select(
        who.user_id,
        multi(request, "dlqIds"),
        flt,
        parse_cursor(request),
        count,
        parse_order(request),
    )
    body: dict[str, Any] = {"messages": [view(letter) for letter in letters]}
    if cursor:
        body["cursor"] = cursor
    return json(body)


async def get_entry(request: Request) -> Response:
    who = caller(request)
    letter = await runtime(request).dead_letters.get(who.user_id, request.path_params["dlqId"])
    return json(view(letter))


async def delete_entry(request: Request) -> Response:
    who = caller(request, write=True)
    await runtime(request).dead_letters.delete_one(who.user_id, request.path_params["dlqId"])
    return json({"deleted": 1})


async def _bulk_selection(request: Request, user: str) -> tuple[list[DeadLetter], str | None]:
    """The entries a bulk delete or retry names: ids or filters, in the query or a body."""
    ids = multi(request, "dlqIds")
    flt = filter_from_query(request)
    body = await json_body(request, allow_empty=True)
    if body is not None:
        if not isinstance(body, dict):
            raise BadRequest('invalid body: expected a JSON object such as {"dlqIds": [...]}')
        raw = body.get("dlqIds") or []
        if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
            raise BadRequest("invalid dlqIds: expected a list of strings")
        ids.extend(raw)
        if flt.empty:
            flt = filter_from_body(body)
    count = int_param(request, "count", 100, 1, 100) or 100
    return await runtime(request).dead_letters.select(
        user, ids, flt, parse_cursor(request), count, parse_order(request)
    )


async def delete_many(request: Request) -> Response:
    who = caller(request, write=True)
    letters, cursor = await _bulk_selection(request, who.user_id)
    deleted = await runtime(request).dead_letters.delete(who.user_id, [e.dlq_id for e in letters])
    body: dict[str, Any] = {"deleted": deleted}
    if cursor:
        body["cursor"] = cursor
    return json(body)


def _headers(request: Request) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]


async def retry_one(request: Request) -> Response:
    who = caller(request, write=True)
    message_id = await runtime(request).dead_letters.retry_one(
        who.user_id, request.path_params["dlqId"], _headers(request)
    )
    return json({"messageId": message_id}, 201)


async def retry_many(request: Request) -> Response:
    who = caller(request, write=True)
    letters, cursor = await _bulk_selection(request, who.user_id)
    retried = await runtime(request).dead_letters.retry_many(
        who.user_id, multi(request, "dlqIds"), letters, _headers(request)
    )
    responses = [{"messageId": message_id} for message_id in retried]
    return json({"cursor": cursor or "", "responses": responses}, 201)


routes = [
    Route("/v2/dlq", list_dlq, methods=["GET"]),
    Route("/v2/dlq", delete_many, methods=["DELETE"]),
    Route("/v2/dlq/retry", retry_many, methods=["POST"]),
    Route("/v2/dlq/retry/{dlqId}", retry_one, methods=["POST"]),
    Route("/v2/dlq/{dlqId}", get_entry, methods=["GET"]),
    Route("/v2/dlq/{dlqId}", delete_entry, methods=["DELETE"]),
]
