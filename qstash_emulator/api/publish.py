"""``POST /v2/publish/{destination}`` (docs/behaviour.md#publish-responses)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .._errors import BodyTooLarge, PlanLimit
from ..model.destination import config_from_query, parse_destination
from ..model.headers import parse_publish
from ..model.options import PublishOptions
from ..services.publisher import check_size
from ._common import caller, caller_ip, json, read_body, runtime
from ._declare import Operations
from ._schemas import PUBLISHED

__all__ = ["api", "raw_tail", "read_publish"]

api = Operations()


def raw_tail(request: Request, prefix: str) -> str:
    """The undecoded path after ``prefix``: the destination as the client wrote it."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("utf-8", "surrogateescape").split("?", 1)[0]
    start = path.find(prefix)
    return path[start + len(prefix) :] if start >= 0 else ""


async def read_publish(
    request: Request, tail: str, *, schedule: bool = False, user: str | None = None
) -> tuple[str, PublishOptions, bytes]:
    """Destination, validated options and body of a publish-family request.

    With ``user``, a URL group destination's default headers count as if the request had
    sent them (the request's own win).
    """
    rt = runtime(request)
    query = request.scope.get("query_string", b"").decode("latin-1")
    destination = parse_destination(tail, query)
    items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    items.extend(config_from_query(query))
    if user is not None:
        items = await rt.url_groups.with_defaults(user, destination, items)
    opts = parse_publish(items, rt.settings, schedule=schedule)
    rt.loops.refuse(destination, opts)
    rt.loops.count_hop(request.headers, opts)
    try:
        body = await read_body(request, limit_name="the maximum message size")
    except BodyTooLarge as exc:
        error = PlanLimit(exc.message)
        raise error.for_workflow() if opts.workflow else error from exc
    check_size(rt.settings, body, opts=opts)
    return destination, opts, body


@api.route(
    "POST /v2/publish/{destination:path}",
    "Publish to a URL or a URL group",
    publish=True,
    response=PUBLISHED,
)
async def publish(request: Request) -> Response:
    who = caller(request, write=True)
    destination, opts, body = await read_publish(
        request, raw_tail(request, "/v2/publish/"), user=who.user_id
    )
    result = await runtime(request).publisher.publish(
        who.user_id, destination, opts, body, caller_ip(request)
    )
    if isinstance(result, dict) and result.get("deduplicated"):
        return json(result, 202)
    return json(result)
