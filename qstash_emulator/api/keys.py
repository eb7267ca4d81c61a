"""``/v2/keys``: the signing keys, and their rotation (docs/behaviour.md#keys)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..services.keys import SigningKeys
from ._common import caller, json
from ._declare import Operations

__all__ = ["api"]

api = Operations()


@api.route("GET /v2/keys", "The signing keys")
async def get_keys(request: Request, *, keys: SigningKeys) -> Response:
    who = caller(request)
    current, nxt = await keys.get(who.user_id)
    return json({"current": current, "next": nxt})


@api.route("POST /v2/keys/rotate", "Rotate the signing keys: next becomes current")
async def rotate_keys(request: Request, *, keys: SigningKeys) -> Response:
    who = caller(request)
    current, nxt = await keys.rotate(who.user_id)
    return json({"current": current, "next": nxt})
