"""``GET /v2/openapi.json``: the emulator's own OpenAPI document (see ``_operations``)."""

from __future__ import annotations

from importlib.metadata import version

from starlette.requests import Request
from starlette.responses import Response

from ._common import caller, json
from ._declare import Operations
from ._operations import OPENAPI_PATH, build_document

__all__ = ["api"]

api = Operations()


@api.route(f"GET {OPENAPI_PATH}", "This document", tag="emulator")
async def openapi(request: Request) -> Response:
    """Built from the routes this app really serves, so it cannot drift from them."""
    caller(request)
    return json(build_document(request.app.routes, version("qstash-emulator")))
