"""``/v2/topics``: URL groups and their endpoints (docs/behaviour.md#url-groups)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ._common import caller, empty, json, json_body, runtime
from ._declare import Operations
from ._schemas import STR, string_map

__all__ = ["api"]

api = Operations()
_ENDPOINTS = {
    "type": "object",
    "required": ["endpoints"],
    "properties": {
        "endpoints": {
            "type": "array",
            "items": {"type": "object", "properties": {"url": STR, "name": STR}},
        }
    },
}


@api.route("POST /v2/topics/{name}/endpoints", "Add endpoints (creates the group)", body=_ENDPOINTS)
async def add_endpoints(request: Request) -> Response:
    who = caller(request, write=True)
    body = await json_body(request)
    await runtime(request).url_groups.upsert_endpoints(
        who.user_id, request.path_params["name"], body
    )
    return empty()


@api.route("DELETE /v2/topics/{name}/endpoints", "Remove endpoints", body=_ENDPOINTS)
async def remove_endpoints(request: Request) -> Response:
    who = caller(request, write=True)
    body = await json_body(request)
    await runtime(request).url_groups.remove_endpoints(
        who.user_id, request.path_params["name"], body
    )
    return empty()


@api.route("GET /v2/topics", "URL groups")
async def list_groups(request: Request) -> Response:
    who = caller(request)
    return json(await runtime(request).url_groups.list_all(who.user_id))


@api.route("GET /v2/topics/{name}", "One URL group")
async def get_group(request: Request) -> Response:
    who = caller(request)
    return json(await runtime(request).url_groups.get(who.user_id, request.path_params["name"]))


@api.route("DELETE /v2/topics/{name}", "Delete a URL group")
async def delete_group(request: Request) -> Response:
    who = caller(request, write=True)
    await runtime(request).url_groups.delete(who.user_id, request.path_params["name"])
    return empty()


@api.route(
    "PATCH /v2/topics/{name}",
    "Set a URL group's default headers",
    body={"type": "object", "required": ["headers"], "properties": {"headers": string_map()}},
)
async def set_headers(request: Request) -> Response:
    who = caller(request, write=True)
    body = await json_body(request)
    await runtime(request).url_groups.set_headers(who.user_id, request.path_params["name"], body)
    return empty()
