"""``/v2/schedules``: create (or replace), read, delete, pause and resume schedules.

The rules: docs/behaviour.md#schedules.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .._errors import NotFound
from ..server.config import Settings
from ..services.loops import Loops
from ..services.schedules import Schedules, schedule_view
from ._common import caller, caller_ip, empty, json
from ._declare import Operations
from .publish import raw_tail, read_publish

__all__ = ["api"]

api = Operations()


@api.route("GET /v2/schedules", "Schedules")
async def list_schedules(request: Request, *, schedules: Schedules, settings: Settings) -> Response:
    who = caller(request)
    default = settings.default_retries
    found = await schedules.for_user(who.user_id)
    return json([schedule_view(s, default) for s in found])


@api.route("GET /v2/schedules/{scheduleId}", "One schedule")
@api.route("GET /v2/Schedules/{scheduleId}", "One schedule (the Go SDK's spelling)")
async def get_schedule(request: Request, *, schedules: Schedules, settings: Settings) -> Response:
    who = caller(request)
    schedule_id = request.path_params["scheduleId"]
    sched = await schedules.get(who.user_id, schedule_id)
    if sched is None:
        raise NotFound(f"schedule {schedule_id!r} not found")
    return json(schedule_view(sched, settings.default_retries))


@api.route("DELETE /v2/schedules/{scheduleId}", "Delete a schedule")
async def delete_schedule(request: Request, *, schedules: Schedules) -> Response:
    who = caller(request)
    schedule_id = request.path_params["scheduleId"]
    if not await schedules.delete(who.user_id, schedule_id):
        raise NotFound(f"schedule {schedule_id!r} not found")
    return empty()


@api.route("POST /v2/schedules/{scheduleId}/pause", "Pause a schedule")
@api.route("PATCH /v2/schedules/{scheduleId}/pause", "Pause a schedule (as the SDKs send it)")
async def pause(request: Request, *, schedules: Schedules) -> Response:
    return await _set_paused(request, schedules, True)


@api.route("POST /v2/schedules/{scheduleId}/resume", "Resume a schedule")
@api.route("PATCH /v2/schedules/{scheduleId}/resume", "Resume a schedule (as the SDKs send it)")
async def resume(request: Request, *, schedules: Schedules) -> Response:
    return await _set_paused(request, schedules, False)


async def _set_paused(request: Request, schedules: Schedules, paused: bool) -> Response:
    who = caller(request)
    schedule_id = request.path_params["scheduleId"]
    if not await schedules.set_paused(who.user_id, schedule_id, paused):
        raise NotFound(f"schedule {schedule_id!r} not found")
    return empty()


# After pause and resume: their paths would match a destination too.
@api.route(
    "POST /v2/schedules/{destination:path}",
    "Create or replace a schedule (the path holds the destination)",
    publish=True,
    schedule=True,
)
# The Go SDK spells the path with a capital S for create and get.
@api.route(
    "POST /v2/Schedules/{destination:path}",
    "Create a schedule (the Go SDK's spelling)",
    publish=True,
    schedule=True,
)
async def create(
    request: Request, *, schedules: Schedules, settings: Settings, loops: Loops
) -> Response:
    who = caller(request)
    tail = raw_tail(request, "/v2/schedules/") or raw_tail(request, "/v2/Schedules/")
    destination, opts, body = await read_publish(request, tail, settings, loops, schedule=True)
    schedule_id = await schedules.create(who.user_id, destination, opts, body, caller_ip(request))
    return json({"scheduleId": schedule_id})
