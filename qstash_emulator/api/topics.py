"""``/v2/topics``: URL groups and their endpoints (docs/behaviour.md#url-groups)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._common import caller, empty, json, json_body, runtime

__all__ = ["routes"]


async def add_endpoints(request: Request) -> Response:
    who = caller(request, write=True)
    body = await json_body(request)
    await runtime(request).url_groups.upsert_endpoints(
        who.user_id, request.path_params["name"], body
    )
    return empty()


async def remove_endpoints(request: Request) -> Response:
    who = caller(request, write=True)
    body = await json_body(request)
    await runtime(request).url_groups.remove_endpoints(
        who.user_id, request.path_params["name"], body
    )
    return empty()


async def list_groups(request: Request) -> Response:
    who = caller(request)
    return json(await runtime(request).url_groups.list_all(who.user_id))


async def get_group(request: Request) -> Response:
    who = caller(request)
    return json(await runtime(request).url_groups.get(who.user_id, request.path_params["name"]))


async def delete_group(request: Request) -> Response:
    who = caller(request, write=True)
    await runtime(request).url_groups.delete(who.user_id, request.path_params["name"])
    return empty()


async def set_headers(request: Request) -> Response:
    who = caller(request, write=True)
    body = await json_body(request)
    await runtime(request).url_groups.set_headers(who.user_id, request.path_params["name"], body)
    return empty()


routes = [
    Route("/v2/topics", list_groups, methods=["GET"]),
    Route("/v2/topics/{name}", get_group, methods=["GET"]),
    Route("/v2/topics/{name}", delete_group, methods=["DELETE"]),
    Route("/v2/topics/{name}", set_headers, methods=["PATCH"]),
    Route("/v2/topics/{name}/endpoints", add_endpoints, methods=["POST"]),
    Route("/v2/topics/{name}/endpoints", remove_endpoints, methods=["DELETE"]),
]
