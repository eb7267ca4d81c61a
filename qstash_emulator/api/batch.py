"""``POST /v2/batch``: many publishes and enqueues in one call (the rules: ``services.batch``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .._errors import BadRequest
from ..server.config import Settings
from ..services.batch import Batches
from ..services.loops import Loops
from ._common import BATCH_LIMIT, caller, caller_ip, json, json_body
from ._declare import Operations
from ._schemas import BATCH

__all__ = ["api"]

api = Operations()


@api.route("POST /v2/batch", "Many publishes and enqueues in one call", body=BATCH)
async def batch(
    request: Request, *, batches: Batches, loops: Loops, settings: Settings
) -> Response:
    who = caller(request)
    hops = loops.depth(request.headers)  # a batch sent by a delivery (docs/behaviour.md#loops)
    limit = max(BATCH_LIMIT, settings.message_size_limit)
    entries = await json_body(request, settings, limit=limit)
    if not isinstance(entries, list):
        raise BadRequest(
            "invalid body: expected a JSON array of {destination, headers, body, queue}"
        )
    return json(await batches.publish(who.user_id, caller_ip(request), entries, hops))
