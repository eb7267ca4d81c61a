"""``/v2/flowControl`` and ``/v2/globalParallelism``: inspect and steer flow-control keys.

The rules: docs/behaviour.md#flow-control.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._errors import NotFound
from .._flow_control import FlowControl, KeyState
from .._headers import parse_bool
from .._quotas import require_parallelism
from ._common import caller, empty, int_param, json, runtime

__all__ = ["routes"]

_WEEK_S = 7 * 86_400


def _flow(request: Request) -> FlowControl:
    return runtime(request).flow_control


async def list_keys(request: Request) -> Response:
    who = caller(request)
    flow = _flow(request)
    search = (request.query_params.get("search") or "").lower()
    keys = await flow.keys(who.user_id)
    return json(
        [
            await flow.view(who.user_id, key, state)
            for key, state in sorted(keys.items())
            if search in key.lower()
        ]
    )


async def get_key(request: Request) -> Response:
    who = caller(request)
    key = request.path_params["key"]
    state = await _flow(request).load(who.user_id, key)
    if state is None:
        raise NotFound(f"flow control key {key!r} not found")
    return json(await _flow(request).view(who.user_id, key, state))


async def global_parallelism(request: Request) -> Response:
    who = caller(request)
    return json(_flow(request).global_view(who.user_id))


async def _change(
    request: Request, change: Callable[[KeyState, int], None], create: bool = False
) -> Response:
    who = caller(request, write=True)
    await _flow(request).update(who.user_id, request.path_params["key"], change, create)
    return empty()


async def pause(request: Request) -> Response:
    def change(state: KeyState, now: int) -> None:
        state.paused = True

    return await _change(request, change, create=True)


async def resume(request: Request) -> Response:
    def change(state: KeyState, now: int) -> None:
        state.paused = False

    return await _change(request, change)


async def pin(request: Request) -> Response:
    """Fix parallelism and/or rate+period; no value pins the key's current config."""
    caller(request, write=True)  # a bad token is a 401 before any parameter is judged
    limits = runtime(request).settings.limits
    parallelism = int_param(request, "parallelism", None, 1, 1_000_000)
    rate = int_param(request, "rate", None, 1, 1_000_000)
    period = int_param(request, "period", None, 1, _WEEK_S)
    require_parallelism("parallelism", parallelism, limits)
    everything = parallelism is None and rate is None and period is None

    def change(state: KeyState, now: int) -> None:
        if parallelism is not None or everything:
            state.pinned_parallelism = True
            if parallelism is not None:
                state.parallelism = parallelism
        if rate is not None or period is not None or everything:
            state.pinned_rate = True
            state.rate = rate if rate is not None else state.rate
            state.period = period if period is not None else state.period
        state.reset_window(now)

    return await _change(request, change, create=True)


async def unpin(request: Request) -> Response:
    caller(request, write=True)
    flags = {
        name: parse_bool(raw, name) if (raw := request.query_params.get(name)) else False
        for name in ("parallelism", "rate")
    }

    def change(state: KeyState, now: int) -> None:
        if flags["parallelism"]:
            state.pinned_parallelism = False
        if flags["rate"]:
            state.pinned_rate = False

    return await _change(request, change)


async def reset_rate(request: Request) -> Response:
    def change(state: KeyState, now: int) -> None:
        state.reset_window(now)

    return await _change(request, change)


routes = [
    Route("/v2/flowControl", list_keys, methods=["GET"]),
    Route("/v2/globalParallelism", global_parallelism, methods=["GET"]),
    Route("/v2/flowControl/{key:path}/pause", pause, methods=["POST"]),
    Route("/v2/flowControl/{key:path}/resume", resume, methods=["POST"]),
    Route("/v2/flowControl/{key:path}/pin", pin, methods=["POST"]),
    Route("/v2/flowControl/{key:path}/unpin", unpin, methods=["POST"]),
    Route("/v2/flowControl/{key:path}/resetRate", reset_rate, methods=["POST"]),
    # A 2026 changelog names it /reset (docs/behaviour.md#flow-control).
    Route("/v2/flowControl/{key:path}/reset", reset_rate, methods=["POST"]),
    Route("/v2/flowControl/{key:path}", get_key, methods=["GET"]),
]
