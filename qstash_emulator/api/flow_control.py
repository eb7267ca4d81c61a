"""``/v2/flowControl`` and ``/v2/globalParallelism``: inspect and steer flow-control keys.

The rules: docs/behaviour.md#flow-control.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..model.header_values import parse_bool
from ..services.flow_control import FlowControlKeys
from ._common import caller, empty, int_param, json
from ._declare import Operations

__all__ = ["api"]

api = Operations()

_WEEK_S = 7 * 86_400
_UNPIN = ("parallelism", "rate")


@api.route("GET /v2/flowControl", "Flow-control keys", query=("search",))
async def list_keys(request: Request, *, flow_control: FlowControlKeys) -> Response:
    who = caller(request)
    search = request.query_params.get("search") or ""
    return json(await flow_control.list_views(who.user_id, search))


@api.route("GET /v2/globalParallelism", "Parallelism in use across all keys")
async def global_parallelism(request: Request, *, flow_control: FlowControlKeys) -> Response:
    who = caller(request)
    return json(flow_control.global_view(who.user_id))


@api.route("POST /v2/flowControl/{key:path}/pause", "Pause a flow-control key")
async def pause(request: Request, *, flow_control: FlowControlKeys) -> Response:
    who = caller(request)
    await flow_control.pause(who.user_id, request.path_params["key"], True)
    return empty()


@api.route("POST /v2/flowControl/{key:path}/resume", "Resume a flow-control key")
async def resume(request: Request, *, flow_control: FlowControlKeys) -> Response:
    who = caller(request)
    await flow_control.pause(who.user_id, request.path_params["key"], False)
    return empty()


@api.route(
    "POST /v2/flowControl/{key:path}/pin",
    "Pin a key's parallelism and/or rate",
    query=("parallelism", "rate", "period"),
)
async def pin(request: Request, *, flow_control: FlowControlKeys) -> Response:
    """Fix parallelism and/or rate+period; no value pins the key's current config."""
    who = caller(request)
    parallelism = int_param(request, "parallelism", None, 1, 1_000_000)
    rate = int_param(request, "rate", None, 1, 1_000_000)
    period = int_param(request, "period", None, 1, _WEEK_S)
    await flow_control.pin(who.user_id, request.path_params["key"], parallelism, rate, period)
    return empty()


@api.route("POST /v2/flowControl/{key:path}/unpin", "Unpin", query=_UNPIN)
async def unpin(request: Request, *, flow_control: FlowControlKeys) -> Response:
    who = caller(request)
    flags = {
        name: parse_bool(raw, name) if (raw := request.query_params.get(name)) else False
        for name in _UNPIN
    }
    await flow_control.unpin(
        who.user_id, request.path_params["key"], flags["parallelism"], flags["rate"]
    )
    return empty()


@api.route("POST /v2/flowControl/{key:path}/resetRate", "Start a new rate window")
# A 2026 changelog names it /reset (docs/behaviour.md#flow-control).
@api.route("POST /v2/flowControl/{key:path}/reset", "Start a new rate window (newer name)")
async def reset_rate(request: Request, *, flow_control: FlowControlKeys) -> Response:
    who = caller(request)
    await flow_control.reset_rate(who.user_id, request.path_params["key"])
    return empty()


# Last: its {key:path} would match the paths above too.
@api.route("GET /v2/flowControl/{key:path}", "One flow-control key")
async def get_key(request: Request, *, flow_control: FlowControlKeys) -> Response:
    who = caller(request)
    return json(await flow_control.get_view(who.user_id, request.path_params["key"]))
