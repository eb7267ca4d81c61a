"""``/v2/queues`` and ``POST /v2/enqueue/{queue}/{destination}`` (docs/behaviour.md#queues)."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._destination import validate_name
from ._common import caller, caller_ip, empty, json, json_body, runtime
from .publish import raw_tail, read_publish

__all__ = ["routes"]


async def upsert(request: Request) -> Response:
    who = caller(request, write=True)
    await runtime(request).queues.upsert(who.user_id, await json_body(request))
    return empty()


async def list_queues(request: Request) -> Response:
    who = caller(request)
    return json(await runtime(request).queues.list_all(who.user_id))


async def get_queue(request: Request) -> Response:
    who = caller(request)
    return json(await runtime(request).queues.get(who.user_id, request.path_params["name"]))


async def delete_queue(request: Request) -> Response:
    """Waiting messages are cancelled (logged); active ones finish (see ``_queues``)."""
    who = caller(request, write=True)
    await runtime(request).queues.delete(who.user_id, request.path_params["name"])
    return empty()


async def pause(request: Request) -> Response:
    who = caller(request, write=True)
    await runtime(request).queues.set_paused(who.user_id, request.path_params["name"], True)
    return empty()


async def resume(request: Request) -> Response:
    who = caller(request, write=True)
    await runtime(request).queues.set_paused(who.user_id, request.path_params["name"], False)
    return empty()


async def enqueue(request: Request) -> Response:
    """Publish through a queue, creating it (parallelism 1) when it does not exist."""
    who = caller(request, write=True)
    rt = runtime(request)
    raw_queue, _, tail = raw_tail(request, "/v2/enqueue/").partition("/")
    queue = validate_name(unquote(raw_queue), "queueName")
    destination, opts, body = await read_publish(request, tail, user=who.user_id)
    result = await rt.queues.enqueue(
        who.user_id,
        queue,
        lambda: rt.publisher.publish(
            who.user_id, destination, opts, body, caller_ip(request), queue_name=queue
        ),
    )
    if isinstance(result, dict) and result.get("deduplicated"):
        return json(result, 202)
    return json(result)


routes = [
    Route("/v2/queues", upsert, methods=["POST"]),
    Route("/v2/queues", list_queues, methods=["GET"]),
    Route("/v2/queues/{name}", get_queue, methods=["GET"]),
    Route("/v2/queues/{name}", delete_queue, methods=["DELETE"]),
    Route("/v2/queues/{name}/pause", pause, methods=["POST"]),
    Route("/v2/queues/{name}/resume", resume, methods=["POST"]),
    Route("/v2/enqueue/{queue}/{destination:path}", enqueue, methods=["POST"]),
]
