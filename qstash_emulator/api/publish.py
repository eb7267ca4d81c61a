"""``POST /v2/publish/{destination}`` (docs/behaviour.md#publish-responses)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .._errors import BodyTooLarge, PlanLimit
from ..model.destination import config_from_query, parse_destination
from ..model.headers import parse_publish
from ..model.options import PublishOptions
from ..server.config import Settings
from ..services.loops import Loops
from ..services.publisher import Publisher, check_size
from ..services.url_groups import UrlGroups
from ._common import caller, caller_ip, published, read_body
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
    request: Request,
    tail: str,
    settings: Settings,
    loops: Loops,
    *,
    schedule: bool = False,
    group_defaults: tuple[UrlGroups, str] | None = None,
) -> tuple[str, PublishOptions, bytes]:
    """Destination, validated options and body of a publish-family request.

    With ``group_defaults`` (the URL groups and the caller's user id), a URL group
    destination's default headers count as if the request had sent them (the request's own
    win).
    """
    query = request.scope.get("query_string", b"").decode("latin-1")
    destination = parse_destination(tail, query)
    items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    items.extend(config_from_query(query))
    if group_defaults is not None:
        groups, user = group_defaults
        items = await groups.with_defaults(user, destination, items)
    opts = parse_publish(items, settings, schedule=schedule)
    loops.refuse(destination, opts)
    loops.count_hop(request.headers, opts)
    try:
        body = await read_body(request, settings, limit_name="the maximum message size")
    except BodyTooLarge as exc:
        error = PlanLimit(exc.message)
        raise error.for_workflow() if opts.workflow else error from exc
    check_size(settings, body, opts=opts)
    return destination, opts, body


@api.route(
    "POST /v2/publish/{destination:path}",
    "Publish to a URL or a URL group",
    publish=True,
    response=PUBLISHED,
)
async def publish(
    request: Request,
    *,
    publisher: Publisher,
    settings: Settings,
    loops: Loops,
    url_groups: UrlGroups,
) -> Response:
    who = caller(request)
    destination, opts, body = await read_publish(
        request,
        raw_tail(request, "/v2/publish/"),
        settings,
        loops,
        group_defaults=(url_groups, who.user_id),
    )
    result = await publisher.publish(who.user_id, destination, opts, body, caller_ip(request))
    return published(result)
