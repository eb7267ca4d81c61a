"""``/v2/keys``: the signing keys, and their rotation (docs/behaviour.md#keys)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ._common import caller, json, runtime
from ._declare import Operations

__all__ = ["api"]

api = Operations()


@api.route("GET /v2/keys", "The signing keys")
async def get_keys(request: Request) -> Response:
    who = caller(request)
    current, nxt = await runtime(request).keys.get(who.user_id)
    return json({"current": current, "next": nxt})


@api.route("POST /v2/keys/rotate", "Rotate the signing keys: next becomes current")
async def rotate_keys(request: Request) -> Response:
    who = caller(request, write=True)
    current, nxt = await runtime(request).keys.rotate(who.user_id)
    return json({"current": current, "next": nxt})
