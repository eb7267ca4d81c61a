"""``GET /v2/openapi.json``: the emulator's own OpenAPI document (see ``_openapi``)."""

from __future__ import annotations

from importlib.metadata import version

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._common import caller, json

__all__ = ["OPENAPI_PATH", "routes"]

OPENAPI_PATH = "/v2/openapi.json"


async def openapi(request: Request) -> Response:
    """Built from the routes this app really serves, so it cannot drift from them."""
    caller(request)
    # The document builder and its tables are only needed when someone asks for the
    # document: lazy, so they stay out of start-up.
    from .._openapi import build_document

    return json(build_document(request.app.routes, version("qstash-emulator")))


routes = [Route(OPENAPI_PATH, openapi, methods=["GET"])]
