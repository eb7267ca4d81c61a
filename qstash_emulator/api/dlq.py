"""``/v2/dlq``: dead letters, listed, read, deleted and retried (docs/behaviour.md#dead-letters)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._engine import make_row
from .._errors import BadRequest, NotFound
from .._headers import H, PublishOptions, parse_publish
from .._models import Message, State, new_id
from .._runtime import Runtime
from .._store import decode_dlq
from .._streams import scan_stream
from .._views import dlq_view
from . import workflow_dlq
from ._common import caller, int_param, json, json_body, multi, runtime
from ._filters import Filter, filter_from_body, filter_from_query, parse_cursor, parse_order

__all__ = ["routes"]


def _view(dlq_id: str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    msg, response = decode_dlq(fields)
    return dlq_view(msg, dlq_id, response)


async def _select(
    rt: Runtime, user: str, request: Request, ids: list[str], flt: Filter, count: int
) -> tuple[list[tuple[str, dict[bytes, bytes]]], str | None]:
    if ids:
        found = []
        for dlq_id in ids:
            fields = await rt.store.dlq_get(user, dlq_id)
            if fields is not None:
                found.append((dlq_id, fields))
        return found, None
    return await scan_stream(
        rt.store.redis,
        rt.store.keyspace.dlq(user),
        parse_cursor(request),
        count,
        parse_order(request),
        lambda fields: flt.matches(_view("", fields)),
    )


async def list_dlq(request: Request) -> Response:
    """Every dead letter; ``source=workflow`` lists only those of workflow runs, with their
    run's fields (as ``GET /v2/workflows/dlq``)."""
    source = request.query_params.get("source")
    if source == "workflow":
        return await workflow_dlq.list_entries(request)
    if source is not None:
        raise BadRequest(f"invalid source: {source!r}, only workflow is supported")
    who = caller(request)
    rt = runtime(request)
    flt = filter_from_query(request)
    count = int_param(request, "count", 100, 1, 100) or 100
    entries, cursor = await _select(rt, who.user_id, request, multi(request, "dlqIds"), flt, count)
    body: dict[str, Any] = {"messages": [_view(i, f) for i, f in entries]}
    if cursor:
        body["cursor"] = cursor
    return json(body)


async def get_entry(request: Request) -> Response:
    who = caller(request)
    dlq_id = request.path_params["dlqId"]
    fields = await runtime(request).store.dlq_get(who.user_id, dlq_id)
    if fields is None:
        raise NotFound(f"dlq entry {dlq_id!r} not found")
    return json(_view(dlq_id, fields))


async def delete_entry(request: Request) -> Response:
    who = caller(request, write=True)
    dlq_id = request.path_params["dlqId"]
    if not await runtime(request).store.dlq_take(who.user_id, [dlq_id]):
        raise NotFound(f"dlq entry {dlq_id!r} not found")
    return json({"deleted": 1})


async def _bulk_selection(
    request: Request, user: str
) -> tuple[list[tuple[str, dict[bytes, bytes]]], str | None]:
    rt = runtime(request)
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
    return await _select(rt, user, request, ids, flt, count)


async def delete_many(request: Request) -> Response:
    who = caller(request, write=True)
    entries, cursor = await _bulk_selection(request, who.user_id)
    deleted = await runtime(request).store.dlq_take(who.user_id, [i for i, _ in entries])
    body: dict[str, Any] = {"deleted": len(deleted)}
    if cursor:
        body["cursor"] = cursor
    return json(body)


async def _retry(
    rt: Runtime, request: Request, user: str, entries: list[tuple[str, dict[bytes, bytes]]]
) -> list[str]:
    """Publish dead letters again as new messages; headers on the request override.

    Each entry is removed first, and only the entries this call removed are published: of a
    retry racing a delete or another retry of the same entry, exactly one wins.
    """
    items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    given = {name.lower() for name, _ in items}
    opts = parse_publish(items, rt.settings)  # refused before any entry is taken
    taken = set(await rt.store.dlq_take(user, [dlq_id for dlq_id, _ in entries]))
    now = rt.clock.now_ms()
    fresh: list[Message] = []
    for dlq_id, fields in entries:
        if dlq_id not in taken:
            continue
        old, _ = decode_dlq(fields)
        msg = replace(
            old,
            id=new_id("msg_"),
            created_at=now,
            retried=0,
            state=State.CREATED,
            final_at=None,
            dlq_id=None,
            **_overrides(opts, given),
        )
        msg.due = opts.not_before_ms if opts.not_before_ms is not None else now + opts.delay_ms
        msg.not_before = msg.due
        fresh.append(msg)
    if fresh:
        await rt.store.add(fresh, [make_row(msg, State.CREATED, now) for msg in fresh])
        rt.engine.notify()
    return [msg.id for msg in fresh]


def _overrides(opts: PublishOptions, given: set[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if H.RETRIES in given:
        changes["max_retries"] = opts.retries
    if H.METHOD in given:
        changes["method"] = opts.method
    if H.RETRY_DELAY in given:
        changes["retry_delay"] = opts.retry_delay
    if H.TIMEOUT in given:
        changes["timeout_ms"] = opts.timeout_ms
    if H.CALLBACK in given:
        changes["callback"] = opts.callback
    if H.FAILURE_CALLBACK in given:
        changes["failure_callback"] = opts.failure_callback
    if any(name.startswith(H.FORWARD) for name in given):
        changes["header"] = opts.header
    return changes


async def retry_one(request: Request) -> Response:
    who = caller(request, write=True)
    rt = runtime(request)
    dlq_id = request.path_params["dlqId"]
    fields = await rt.store.dlq_get(who.user_id, dlq_id)
    if fields is None:
        raise NotFound(f"dlq entry {dlq_id!r} not found")
    retried = await _retry(rt, request, who.user_id, [(dlq_id, fields)])
    if not retried:  # a delete or another retry took it since it was read
        raise NotFound(f"dlq entry {dlq_id!r} not found")
    return json({"messageId": retried[0]}, 201)


async def retry_many(request: Request) -> Response:
    who = caller(request, write=True)
    rt = runtime(request)
    entries, cursor = await _bulk_selection(request, who.user_id)
    requested = multi(request, "dlqIds")
    if requested and len(entries) < len(set(requested)):
        missing = sorted(set(requested) - {i for i, _ in entries})
        raise NotFound(f"dlq entries not found: {', '.join(missing)}")
    retried = await _retry(rt, request, who.user_id, entries)
    if requested and not retried:  # others took every one of them since they were read
        raise NotFound(f"dlq entries not found: {', '.join(sorted(set(requested)))}")
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
