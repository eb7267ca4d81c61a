"""``/v2/workflows/dlq``: the dead letters of failed workflow runs; resume, restart, and the
failure function called again. ``GET /v2/dlq?source=workflow`` lists the same entries."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .._errors import BadRequest, NotFound
from ..model.headers import parse_publish
from ..server.config import Settings
from ..workflows import DlqFilter, RunDlq
from ._common import caller, int_param, json, multi
from ._declare import Operations
from ._filters import parse_cursor, parse_order

__all__ = ["FAILURE_STATES", "FILTER_NAMES", "api", "dlq_filter", "list_entries"]

FAILURE_STATES = ("CALLBACK_INPROGRESS", "CALLBACK_SUCCESS", "CALLBACK_FAIL", "CALLBACK_CANCELED")
# At most this many runs are resumed or restarted per call; a cursor says where to go on.
_ACTION_PAGE = 50
# The query names dlq_filter reads.
FILTER_NAMES = (
    "workflowUrl",
    "workflowRunId",
    "workflowCreatedAt",
    "failureFunctionState",
    "label",
    "callerIp",
    "flowControlKey",
    "fromDate",
    "toDate",
    "url",
    "responseStatus",
)
_BULK = ("cursor", "count", "dlqIds", *FILTER_NAMES)

api = Operations()


def dlq_filter(request: Request) -> DlqFilter:
    """The filters of a query string (``FILTER_NAMES``)."""
    query = request.query_params
    state = query.get("failureFunctionState") or None
    if state is not None and state not in FAILURE_STATES:
        raise BadRequest(
            f"invalid failureFunctionState: {state!r}, want one of {', '.join(FAILURE_STATES)}"
        )
    return DlqFilter(
        workflow_url=query.get("workflowUrl") or None,
        run_id=query.get("workflowRunId") or None,
        created_at=int_param(request, "workflowCreatedAt", None, 0, 2**63),
        label=query.get("label") or None,
        failure_state=state,
        caller_ip=query.get("callerIp") or None,
        flow_keys=multi(request, "flowControlKey"),
        from_date=int_param(request, "fromDate", None, 0, 2**63),
        to_date=int_param(request, "toDate", None, 0, 2**63),
        url=query.get("url") or None,
        response_status=int_param(request, "responseStatus", None, 0, 999),
    )


@api.route(
    "GET /v2/workflows/dlq",
    "Dead letters of workflow runs",
    query=("cursor", "count", "order", "dlqIds", *FILTER_NAMES),
)
async def list_entries(request: Request, *, run_dlq: RunDlq) -> Response:
    who = caller(request)
    count = int_param(request, "count", 100, 1, 100) or 100
    found, cursor = await run_dlq.select(
        who.user_id,
        multi(request, "dlqIds"),
        dlq_filter(request),
        parse_cursor(request),
        count,
        parse_order(request),
    )
    return json({"messages": [view for _, view, _ in found], "cursor": cursor or ""})


@api.route("GET /v2/workflows/dlq/{dlqId}", "One dead letter of a workflow run")
async def get_entry(request: Request, *, run_dlq: RunDlq) -> Response:
    who = caller(request)
    view, _ = await run_dlq.get(who.user_id, request.path_params["dlqId"])
    return json(view)


@api.route("DELETE /v2/workflows/dlq/{dlqId}", "Delete one dead letter of a workflow run")
async def delete_entry(request: Request, *, run_dlq: RunDlq) -> Response:
    who = caller(request)
    dlq_id = request.path_params["dlqId"]
    await run_dlq.get(who.user_id, dlq_id)
    if not await run_dlq.delete(who.user_id, [dlq_id]):
        raise NotFound(f"workflow dlq entry {dlq_id!r} not found")
    return json({"deleted": 1})


@api.route("DELETE /v2/workflows/dlq", "Delete dead letters of workflow runs", query=_BULK)
async def delete_many(request: Request, *, run_dlq: RunDlq) -> Response:
    who = caller(request)
    count = int_param(request, "count", 100, 1, 1_000) or 100
    found, cursor = await run_dlq.select(
        who.user_id, multi(request, "dlqIds"), dlq_filter(request), parse_cursor(request), count
    )
    deleted = await run_dlq.delete(who.user_id, [dlq_id for dlq_id, _, _ in found])
    body: dict[str, Any] = {"deleted": deleted}
    if cursor:
        body["cursor"] = cursor
    return json(body)


async def _act(request: Request, run_dlq: RunDlq, settings: Settings, restart: bool) -> Response:
    who = caller(request)
    items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    opts = parse_publish(items, settings)  # refused before anything is taken
    given = {name.lower() for name, _ in items}
    dlq_id = request.path_params.get("dlqId")
    if dlq_id is not None:
        _, fields = await run_dlq.get(who.user_id, dlq_id)
        started = await run_dlq.resume(who.user_id, dlq_id, fields, opts, given, restart=restart)
        return json(started)
    ids = multi(request, "dlqIds")
    count = min(int_param(request, "count", 100, 1, 1_000) or 100, _ACTION_PAGE)
    found, cursor = await run_dlq.select(
        who.user_id, ids, dlq_filter(request), parse_cursor(request), count
    )
    if ids and len(found) < len(set(ids)):
        missing = sorted(set(ids) - {dlq_id for dlq_id, _, _ in found})
        raise NotFound(f"workflow dlq entries not found: {', '.join(missing)}")
    runs = [
        await run_dlq.resume(who.user_id, dlq_id, fields, opts, given, restart=restart)
        for dlq_id, _, fields in found
    ]
    return json({"workflowRuns": runs, "cursor": cursor or ""})


@api.route(
    "POST /v2/workflows/dlq/resume",
    "Resume failed workflow runs (at most 50 a call), each as a new run",
    query=_BULK,
)
async def resume(request: Request, *, run_dlq: RunDlq, settings: Settings) -> Response:
    """Continue failed runs where they failed, each as a new run that keeps its steps."""
    return await _act(request, run_dlq, settings, restart=False)


@api.route(
    "POST /v2/workflows/dlq/resume/{dlqId}",
    "Continue a failed run where it failed, as a new run keeping its steps",
)
async def resume_one(request: Request, *, run_dlq: RunDlq, settings: Settings) -> Response:
    return await _act(request, run_dlq, settings, restart=False)


@api.route(
    "POST /v2/workflows/dlq/restart",
    "Restart failed workflow runs (at most 50 a call), each as a new run",
    query=_BULK,
)
async def restart(request: Request, *, run_dlq: RunDlq, settings: Settings) -> Response:
    """Start failed runs again from their first step, each as a new run."""
    return await _act(request, run_dlq, settings, restart=True)


@api.route(
    "POST /v2/workflows/dlq/restart/{dlqId}",
    "Start a failed run again from its first step, as a new run",
)
async def restart_one(request: Request, *, run_dlq: RunDlq, settings: Settings) -> Response:
    return await _act(request, run_dlq, settings, restart=True)


@api.route(
    "POST /v2/workflows/dlq/callback/{dlqId}",
    "Call a failed run's failure function again (when its call failed)",
)
async def retry_failure_function(request: Request, *, run_dlq: RunDlq) -> Response:
    who = caller(request)
    started = await run_dlq.retry_failure(who.user_id, request.path_params["dlqId"])
    return json(started)


@api.route(
    "DELETE /v2/workflows/dlq/callback/{dlqId}",
    "Stop a failed run's failure function call in progress",
)
async def cancel_failure_function(request: Request, *, run_dlq: RunDlq) -> Response:
    who = caller(request)
    await run_dlq.cancel_failure(who.user_id, request.path_params["dlqId"])
    return json({})
