"""``/v2/keys``: the signing keys, and their rotation (docs/behaviour.md#keys)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._common import caller, json, runtime

__all__ = ["routes"]


async def get_keys(request: Request) -> Response:
    who = caller(request)
    current, nxt = await runtime(request).signing_keys(who.user_id)
    return json({"current": current, "next": nxt})


async def rotate_keys(request: Request) -> Response:
    who = caller(request, write=True)
    current, nxt = await runtime(request).rotate_keys(who.user_id)
    return json({"current": current, "next": nxt})


routes = [
    Route("/v2/keys", get_keys, methods=["GET"]),
    Route("/v2/keys/rotate", rotate_keys, methods=["POST"]),
]
