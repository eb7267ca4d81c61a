"""What every handler needs: the caller, request bodies, query parsing and JSON responses."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import _json
from .._errors import BadRequest, BodyTooLarge
from ..server.config import Settings
from ..services.users import Caller, Users
from ._query import int_param, multi

__all__ = [
    "BATCH_LIMIT",
    "JSON_LIMIT",
    "authenticate",
    "caller",
    "caller_ip",
    "empty",
    "int_param",
    "json",
    "json_body",
    "multi",
    "published",
    "read_body",
]

# The largest bodies, besides a message's (the plan's size): a batch (Upstash's limit for one
# call), and the JSON of other routes, which may carry a message body too (a wait's timeout
# body), hence the larger of this and the message size (docs/behaviour.md#request-bodies).
BATCH_LIMIT = 100 << 20
JSON_LIMIT = 1 << 20


def caller(request: Request) -> Caller:
    """Who sent the request: authenticated before the handler ran, a read-only token's write
    refused (``_declare.route_of``)."""
    who: Caller = request.state.caller
    return who


def authenticate(request: Request, write: bool, users: Users) -> Caller:
    """By ``Authorization: Bearer`` or ``?qstash_token=``."""
    auth = request.headers.get("authorization")
    token = None
    if auth:
        scheme, _, value = auth.partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    if not token:
        token = request.query_params.get("qstash_token")
    return users.authenticate(token, write)


def caller_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def json(data: Any, status: int = 200) -> Response:
    return Response(_json.dumps(data), status, media_type="application/json")


def published(result: Any) -> Response:
    """A publish's answer: 202 when it was a duplicate, else 200."""
    if isinstance(result, dict) and result.get("deduplicated"):
        return json(result, 202)
    return json(result)


def empty(status: int = 200) -> Response:
    return Response(b"", status)


async def read_body(
    request: Request,
    settings: Settings,
    limit: int | None = None,
    limit_name: str = "this route's limit",
) -> bytes:
    """The request's body, never read past ``limit`` bytes (default: the message size): one
    whose ``Content-Length`` is over it is refused before a byte is read, and a streamed one
    once it passes the limit (``BodyTooLarge``; the connection is then closed)."""
    if limit is None:
        limit = settings.message_size_limit
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(
            f"invalid body: {int(declared)} bytes exceeds {limit_name} of {limit} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(
                f"invalid body: more than {limit} bytes exceeds {limit_name} of {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)  # a body in one chunk (most) is that chunk, not a copy


async def json_body(
    request: Request, settings: Settings, *, allow_empty: bool = False, limit: int | None = None
) -> Any:
    """The body as JSON, at most ``limit`` bytes (default: ``JSON_LIMIT`` or the message size,
    whichever is larger)."""
    if limit is None:
        limit = max(JSON_LIMIT, settings.message_size_limit)
    raw = await read_body(request, settings, limit)
    if not raw.strip():
        if allow_empty:
            return None
        raise BadRequest("invalid body: expected JSON, got an empty body")
    try:
        return _json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"invalid body: not valid JSON ({exc})") from exc
