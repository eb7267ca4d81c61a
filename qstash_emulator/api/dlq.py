"""``/v2/dlq``: dead letters, listed, read, deleted and retried (docs/behaviour.md#dead-letters)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .._errors import BadRequest
from ..model.message import DeadLetter
from ..server.config import Settings
from ..services.dead_letters import DeadLetters, view
from ..workflows import RunDlq
from . import workflow_dlq
from ._common import caller, int_param, json, json_body, multi
from ._declare import Operations
from ._filters import (
    FILTER_NAMES,
    PAGE_NAMES,
    filter_from_body,
    filter_from_query,
    parse_cursor,
    parse_order,
)
from ._schemas import ids_or_filters

__all__ = ["api"]

api = Operations()
_BULK = (*PAGE_NAMES, *FILTER_NAMES, "dlqIds")


@api.route(
    "GET /v2/dlq",
    "Dead letters (source=workflow: those of workflow runs)",
    query=(*_BULK, "source", *workflow_dlq.FILTER_NAMES),
)
async def list_dlq(request: Request, *, dead_letters: DeadLetters, run_dlq: RunDlq) -> Response:
    """Every dead letter; ``source=workflow`` lists only those of workflow runs, with their
    run's fields (as ``GET /v2/workflows/dlq``)."""
    source = request.query_params.get("source")
    if source == "workflow":
        return await workflow_dlq.list_entries(request, run_dlq=run_dlq)
    if source is not None:
        raise BadRequest(f"invalid source: {source!r}, only workflow is supported")
    who = caller(request)
    flt = filter_from_query(request)
    count = int_param(request, "count", 100, 1, 100) or 100
    letters, cursor = await dead_letters.select(
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


@api.route("GET /v2/dlq/{dlqId}", "One dead letter")
async def get_entry(request: Request, *, dead_letters: DeadLetters) -> Response:
    who = caller(request)
    letter = await dead_letters.get(who.user_id, request.path_params["dlqId"])
    return json(view(letter))


@api.route("DELETE /v2/dlq/{dlqId}", "Delete one dead letter")
async def delete_entry(request: Request, *, dead_letters: DeadLetters) -> Response:
    who = caller(request)
    await dead_letters.delete_one(who.user_id, request.path_params["dlqId"])
    return json({"deleted": 1})


async def _bulk_selection(
    request: Request, user: str, dead_letters: DeadLetters, settings: Settings
) -> tuple[list[DeadLetter], str | None]:
    """The entries a bulk delete or retry names: ids or filters, in the query or a body."""
    ids = multi(request, "dlqIds")
    flt = filter_from_query(request)
    body = await json_body(request, settings, allow_empty=True)
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
    return await dead_letters.select(
        user, ids, flt, parse_cursor(request), count, parse_order(request)
    )


@api.route("DELETE /v2/dlq", "Delete dead letters", query=_BULK, body=ids_or_filters("dlqIds"))
async def delete_many(
    request: Request, *, dead_letters: DeadLetters, settings: Settings
) -> Response:
    who = caller(request)
    letters, cursor = await _bulk_selection(request, who.user_id, dead_letters, settings)
    deleted = await dead_letters.delete(who.user_id, [e.dlq_id for e in letters])
    body: dict[str, Any] = {"deleted": deleted}
    if cursor:
        body["cursor"] = cursor
    return json(body)


def _headers(request: Request) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]


@api.route("POST /v2/dlq/retry/{dlqId}", "Publish one dead letter again", status=201)
async def retry_one(request: Request, *, dead_letters: DeadLetters) -> Response:
    who = caller(request)
    message_id = await dead_letters.retry_one(
        who.user_id, request.path_params["dlqId"], _headers(request)
    )
    return json({"messageId": message_id}, 201)


@api.route(
    "POST /v2/dlq/retry",
    "Publish dead letters again",
    query=_BULK,
    body=ids_or_filters("dlqIds"),
    status=201,
)
async def retry_many(
    request: Request, *, dead_letters: DeadLetters, settings: Settings
) -> Response:
    who = caller(request)
    letters, cursor = await _bulk_selection(request, who.user_id, dead_letters, settings)
    retried = await dead_letters.retry_many(
        who.user_id, multi(request, "dlqIds"), letters, _headers(request)
    )
    responses = [{"messageId": message_id} for message_id in retried]
    return json({"cursor": cursor or "", "responses": responses}, 201)
