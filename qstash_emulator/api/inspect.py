"""``/_emulator/...``: look inside without side effects, plus run-now and API faults.

Not part of QStash. Every route is scoped to the caller's token like ``/v2`` is, so tests
sharing one server cannot see or change each other's messages.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .._errors import BadRequest, NotFound
from ..delivery.clock import Clock
from ..model.filters import Filter
from ..server.config import Settings
from ..services.dead_letters import DeadLetters, view
from ..services.faults import FAULT_KINDS, Fault, Faults
from ..services.inspection import STATES, Inspector, attempt_view
from ..services.keys import SigningKeys
from ._common import caller, int_param, json, json_body, multi
from ._declare import Operations
from ._filters import PAGE_NAMES, parse_cursor, parse_order
from ._schemas import INT, STR, string_map

__all__ = ["api"]

api = Operations()


@api.route(
    "GET /_emulator/messages",
    "Waiting messages by state; with count (and offset) a page, the total and counts",
    query=("state", "count", "offset", "messageId"),
    tag="emulator",
)
async def list_messages(request: Request, *, inspector: Inspector) -> Response:
    """Messages that are not final, by state: pending, delayed, retrying, in_flight, queued;
    with ``count`` (and ``offset``) one page of them, their total and the counts by state;
    with ``messageId`` that one only (none once it is final)."""
    who = caller(request)
    states = set(multi(request, "state"))
    unknown = states - set(STATES)
    if unknown:
        raise BadRequest(
            f"invalid state: {', '.join(sorted(unknown))}; expected any of {', '.join(STATES)}"
        )
    count = int_param(request, "count", None, 1, 1_000)
    message_id = request.query_params.get("messageId")
    if message_id:  # one message, while it waits: a detail says its state as the list does
        one = await inspector.one(who.user_id, message_id)
        found = [one] if one is not None and (not states or one.state in states) else []
        return json({"messages": [w.view() for w in found]})
    if count is None:
        waiting = await inspector.waiting(who.user_id, states or None)
        return json({"messages": [w.view() for w in waiting]})
    offset = int_param(request, "offset", 0, 0, 10_000_000) or 0
    page, total, counts = await inspector.page(who.user_id, states or None, offset, count)
    return json({"messages": [w.view() for w in page], "total": total, "counts": counts})


@api.route(
    "GET /_emulator/dlq",
    "Dead letters in the /v2/dlq shape, a page at a time as /v2/dlq pages",
    query=PAGE_NAMES,
    tag="emulator",
)
async def list_dead_letters(request: Request, *, dead_letters: DeadLetters) -> Response:
    """Every dead letter, unfiltered, paged as ``GET /v2/dlq`` is (``cursor``, ``order``, a
    page ending early at its byte cap) but with pages of up to 1,000 (100 by default)."""
    who = caller(request)
    count = int_param(request, "count", 100, 1, 1_000) or 100
    letters, cursor = await dead_letters.select(
        who.user_id, [], Filter(), parse_cursor(request), count, parse_order(request)
    )
    body: dict[str, Any] = {"messages": [view(letter) for letter in letters]}
    if cursor:
        body["cursor"] = cursor
    return json(body)


@api.route(
    "GET /_emulator/attempts",
    "Delivery attempts, oldest first, a page at a time",
    query=("messageId", "cursor", "count"),
    tag="emulator",
)
async def list_attempts(request: Request, *, inspector: Inspector, keys: SigningKeys) -> Response:
    """All the attempts kept (up to 1,000 a user) by default, but a page ends early at the
    store's page byte cap, with a ``cursor`` to the rest: their bodies reach the body budget."""
    who = caller(request)
    message_id = request.query_params.get("messageId") or None
    count = int_param(request, "count", 1_000, 1, 1_000) or 1_000
    start = int_param(request, "cursor", 0, 0, 2**63) or 0
    attempts, cursor = inspector.attempt_page(who.user_id, message_id, start, count)
    pair = await keys.get(who.user_id)
    body: dict[str, Any] = {"attempts": [attempt_view(a, pair) for a in attempts]}
    if cursor is not None:
        body["cursor"] = str(cursor)
    return json(body)


@api.route(
    "GET /_emulator/schedules/{scheduleId}/times",
    "A schedule's next run times",
    query=("count",),
    tag="emulator",
)
async def schedule_times(request: Request, *, inspector: Inspector) -> Response:
    who = caller(request)
    schedule_id = request.path_params["scheduleId"]
    count = int_param(request, "count", 5, 1, 1_000) or 5
    times = await inspector.schedule_times(who.user_id, schedule_id, count)
    if times is None:
        raise NotFound(f"schedule {schedule_id!r} not found")
    return json({"scheduleId": schedule_id, "times": times})


@api.route("POST /_emulator/run-now/{id}", "Make a message or schedule due now", tag="emulator")
async def run_now(request: Request, *, inspector: Inspector) -> Response:
    who = caller(request)
    item_id = request.path_params["id"]
    try:
        moved = await inspector.run_now(who.user_id, item_id)
    except LookupError as exc:
        raise NotFound(str(exc)) from exc
    return json({"moved": moved, "id": item_id})


@api.route("GET /_emulator/clock", "The emulator's clock", tag="emulator")
async def get_clock(request: Request, *, clock: Clock) -> Response:
    caller(request)
    return json({"now": clock.now_ms(), "virtual": clock.virtual})


def _fault_view(fault: Fault) -> dict[str, Any]:
    return {
        "kind": fault.kind,
        "status": fault.status,
        "path": fault.path,
        "method": fault.method,
        "left": fault.left,
        "description": fault.describe(),
    }


@api.route("GET /_emulator/faults", "Programmed API faults", tag="emulator")
async def list_faults(request: Request, *, faults: Faults) -> Response:
    who = caller(request)
    return json({"faults": [_fault_view(f) for f in faults.remaining(who.user_id)]})


_FAULT_TYPES: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "status": int,
    "path": str,
    "method": str,
    "times": int,
    "delayMs": (int, float),
    "headers": dict,
    "error": str,
}


@api.route(
    "POST /_emulator/faults",
    "Program an API fault",
    body={
        "type": "object",
        "properties": {
            "kind": {"enum": list(FAULT_KINDS)},
            "status": INT,
            "path": STR,
            "method": STR,
            "times": {"type": ["integer", "null"]},
            "delayMs": INT,
            "headers": string_map(),
            "error": STR,
        },
    },
    status=201,
    tag="emulator",
)
async def add_fault(request: Request, *, faults: Faults, settings: Settings) -> Response:
    """Program a fault for the caller (kind, status, path, method, times, delayMs, ...)."""
    who = caller(request)
    body = await json_body(request, settings)
    if not isinstance(body, dict):
        raise BadRequest('invalid body: expected a JSON object such as {"kind": "daily"}')
    allowed = {"kind", "status", "path", "method", "times", "delayMs", "headers", "error"}
    extra = set(body) - allowed
    if extra:
        raise BadRequest(f"invalid field: {', '.join(sorted(extra))}")
    for name, kind in _FAULT_TYPES.items():
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            raise BadRequest(f"invalid {name}: {value!r}")
    try:
        fault = Fault(
            kind=body.get("kind", "error"),  # checked as a str above, and by Fault
            status=int(body.get("status", 500)),
            path=str(body.get("path", "/")),
            method=body.get("method"),
            user=who.user_id,
            times=None if body.get("times", 1) is None else int(body.get("times", 1)),
            delay_s=float(body.get("delayMs", 0)) / 1_000,
            headers={str(k): str(v) for k, v in (body.get("headers") or {}).items()},
            body=body.get("error"),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(f"invalid fault: {exc}") from exc
    faults.add(fault)
    return json(_fault_view(fault), 201)


@api.route("DELETE /_emulator/faults", "Clear programmed API faults", tag="emulator")
async def clear_faults(request: Request, *, faults: Faults) -> Response:
    who = caller(request)
    count = len(faults.remaining(who.user_id))
    faults.clear(who.user_id)
    return json({"cleared": count})
