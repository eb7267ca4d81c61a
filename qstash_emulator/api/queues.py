"""``/v2/queues`` and ``POST /v2/enqueue/{queue}/{destination}`` (docs/behaviour.md#queues)."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from ..model.destination import validate_name
from ..server.config import Settings
from ..services.loops import Loops
from ..services.publisher import Publisher
from ..services.queues import Queues
from ..services.url_groups import UrlGroups
from ._common import caller, caller_ip, empty, json, json_body, published
from ._declare import Operations
from ._schemas import PUBLISHED
from .publish import raw_tail, read_publish

__all__ = ["api"]

api = Operations()


@api.route(
    "POST /v2/queues",
    "Create or change a queue",
    body={
        "type": "object",
        "required": ["queueName"],
        "properties": {
            "queueName": {"type": "string"},
            "parallelism": {"type": "integer", "minimum": 1},
            "paused": {"type": "boolean"},
        },
    },
)
async def upsert(request: Request, *, queues: Queues, settings: Settings) -> Response:
    who = caller(request)
    await queues.upsert(who.user_id, await json_body(request, settings))
    return empty()


@api.route("GET /v2/queues", "Queues")
async def list_queues(request: Request, *, queues: Queues) -> Response:
    who = caller(request)
    return json(await queues.list_all(who.user_id))


@api.route("GET /v2/queues/{name}", "One queue")
async def get_queue(request: Request, *, queues: Queues) -> Response:
    who = caller(request)
    return json(await queues.get(who.user_id, request.path_params["name"]))


@api.route("DELETE /v2/queues/{name}", "Delete a queue; its waiting messages are cancelled")
async def delete_queue(request: Request, *, queues: Queues) -> Response:
    """Waiting messages are cancelled (logged); active ones finish (see ``services.queues``)."""
    who = caller(request)
    await queues.delete(who.user_id, request.path_params["name"])
    return empty()


@api.route("POST /v2/queues/{name}/pause", "Pause a queue")
async def pause(request: Request, *, queues: Queues) -> Response:
    who = caller(request)
    await queues.set_paused(who.user_id, request.path_params["name"], True)
    return empty()


@api.route("POST /v2/queues/{name}/resume", "Resume a queue")
async def resume(request: Request, *, queues: Queues) -> Response:
    who = caller(request)
    await queues.set_paused(who.user_id, request.path_params["name"], False)
    return empty()


@api.route(
    "POST /v2/enqueue/{queue}/{destination:path}",
    "Publish through a FIFO queue (created with parallelism 1 if missing)",
    publish=True,
    response=PUBLISHED,
)
async def enqueue(
    request: Request,
    *,
    queues: Queues,
    publisher: Publisher,
    settings: Settings,
    loops: Loops,
    url_groups: UrlGroups,
) -> Response:
    """Publish through a queue, creating it (parallelism 1) when it does not exist."""
    who = caller(request)
    raw_queue, _, tail = raw_tail(request, "/v2/enqueue/").partition("/")
    queue = validate_name(unquote(raw_queue), "queueName")
    destination, opts, body = await read_publish(
        request, tail, settings, loops, group_defaults=(url_groups, who.user_id)
    )
    result = await queues.enqueue(
        who.user_id,
        queue,
        lambda: publisher.publish(
            who.user_id, destination, opts, body, caller_ip(request), queue_name=queue
        ),
    )
    return published(result)
