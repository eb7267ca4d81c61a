"""``/v2/topics``: URL groups and their endpoints (docs/behaviour.md#url-groups)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..server.config import Settings
from ..services.url_groups import UrlGroups
from ._common import caller, empty, json, json_body
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
async def add_endpoints(request: Request, *, url_groups: UrlGroups, settings: Settings) -> Response:
    who = caller(request)
    body = await json_body(request, settings)
    await url_groups.upsert_endpoints(who.user_id, request.path_params["name"], body)
    return empty()


@api.route("DELETE /v2/topics/{name}/endpoints", "Remove endpoints", body=_ENDPOINTS)
async def remove_endpoints(
    request: Request, *, url_groups: UrlGroups, settings: Settings
) -> Response:
    who = caller(request)
    body = await json_body(request, settings)
    await url_groups.remove_endpoints(who.user_id, request.path_params["name"], body)
    return empty()


@api.route("GET /v2/topics", "URL groups")
async def list_groups(request: Request, *, url_groups: UrlGroups) -> Response:
    who = caller(request)
    return json(await url_groups.list_all(who.user_id))


@api.route("GET /v2/topics/{name}", "One URL group")
async def get_group(request: Request, *, url_groups: UrlGroups) -> Response:
    who = caller(request)
    return json(await url_groups.get(who.user_id, request.path_params["name"]))


@api.route("DELETE /v2/topics/{name}", "Delete a URL group")
async def delete_group(request: Request, *, url_groups: UrlGroups) -> Response:
    who = caller(request)
    await url_groups.delete(who.user_id, request.path_params["name"])
    return empty()


@api.route(
    "PATCH /v2/topics/{name}",
    "Set a URL group's default headers",
    body={"type": "object", "required": ["headers"], "properties": {"headers": string_map()}},
)
async def set_headers(request: Request, *, url_groups: UrlGroups, settings: Settings) -> Response:
    who = caller(request)
    body = await json_body(request, settings)
    await url_groups.set_headers(who.user_id, request.path_params["name"], body)
    return empty()
