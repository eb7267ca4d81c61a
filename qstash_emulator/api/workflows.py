"""``/v2/workflows/runs`` and ``/v2/workflows/logs``: end, cancel, read and list runs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .._errors import BadRequest, PlanLimit
from ..model.header_values import parse_bool
from ..model.headers import H
from ..server.config import Settings
from ..services.batch import Batches
from ..services.loops import Loops
from ..services.url_groups import UrlGroups
from ..workflows import STATES, RunFilter, Runs, RunStore, run_events, run_log, select_runs
from ._common import (
    BATCH_LIMIT,
    caller,
    caller_ip,
    empty,
    int_param,
    json,
    json_body,
    multi,
    read_body,
)
from ._declare import Operations
from ._schemas import BATCH, INT, STR
from .publish import raw_tail, read_publish

__all__ = ["CANCEL_FILTER_NAMES", "LOG_FILTER_NAMES", "api", "cancel_filter", "log_filter"]

# The query names _run_filter reads, and those each of its two callers adds.
_RUN_FILTER_NAMES = (
    "workflowRunId",
    "workflowUrl",
    "workflowCreatedAt",
    "label",
    "fromDate",
    "toDate",
    "flowControlKey",
    "callerIp",
    "callerIP",  # the older spelling, as /v2/logs takes it
)
LOG_FILTER_NAMES = (*_RUN_FILTER_NAMES, "messageId", "workflowRuns", "state")
CANCEL_FILTER_NAMES = (*_RUN_FILTER_NAMES, "workflowUrlExactMatch")
_LOG_QUERY = (
    "cursor",
    "count",
    "state",
    "workflowRuns",
    "messageId",
    "trimBody",
    *LOG_FILTER_NAMES,
)

api = Operations()


@api.route(
    "DELETE /v2/workflows/runs/{workflowRunId}",
    "Cancel a workflow run, or end it with its result (cancel=false)",
    query=("cancel",),
)
async def end_run(request: Request, *, runs: Runs, settings: Settings) -> Response:
    """``?cancel=false`` is the SDK saying the run returned (the body is its result);
    otherwise the run is cancelled."""
    who = caller(request)
    run_id = request.path_params["workflowRunId"]
    raw = request.query_params.get("cancel")
    if raw is not None and not parse_bool(raw, "cancel"):
        result = (await read_body(request, settings)).decode("utf-8", "replace")
        await runs.finish(who.user_id, run_id, result)
    else:
        await runs.cancel(who.user_id, run_id)
    return empty()


@api.route(
    "DELETE /v2/workflows/runs",
    "Cancel workflow runs by id or filter",
    query=("workflowRunIds", "workflowUrlExactMatch", "count", *CANCEL_FILTER_NAMES),
)
async def cancel_runs(request: Request, *, runs: Runs) -> Response:
    """Bulk cancel: the runs named by ``workflowRunIds``, else those the filters match."""
    who = caller(request)
    ids = multi(request, "workflowRunIds")
    count = int_param(request, "count", 100, 1, 10_000) or 100
    flt = cancel_filter(request)
    flt.state = "RUN_STARTED"
    cancelled = await runs.cancel_many(who.user_id, ids, flt, count)
    return json({"cancelled": cancelled})


@api.route("GET /v2/workflows/runs/{workflowRunId}", "A running workflow run's messages")
async def get_run(request: Request, *, runs: Runs) -> Response:
    """The run's messages so far: how an SDK reads a history too large to be delivered."""
    who = caller(request)
    history = await runs.history(who.user_id, request.path_params["workflowRunId"])
    return json(history)


@api.route(
    "GET /v2/workflows/logs",
    "Workflow runs with their steps, newest first",
    query=_LOG_QUERY,
)
async def list_runs(request: Request, *, runs: Runs) -> Response:
    """Runs with their steps, newest first."""
    return await _list_runs(request, runs.store, grouped=True)


@api.route(
    "GET /v2/workflows/events",
    "Workflow runs with their steps (groupBy=workflowRunId, as the JS client asks)",
    query=("groupBy", *_LOG_QUERY),
)
async def list_events(request: Request, *, runs: Runs) -> Response:
    """With ``groupBy=workflowRunId`` (how the JS client asks) as ``/v2/workflows/logs``;
    without, every event of the matching runs."""
    group = request.query_params.get("groupBy")
    if group not in (None, "workflowRunId"):
        raise BadRequest(f"invalid groupBy: {group!r}, only workflowRunId is supported")
    return await _list_runs(request, runs.store, grouped=group is not None)


async def _list_runs(request: Request, store: RunStore, *, grouped: bool) -> Response:
    who = caller(request)
    trim = int_param(request, "trimBody", None, -1, 2**31)
    flt = log_filter(request)
    cursor = request.query_params.get("cursor") or None
    if not grouped:
        return await _list_events(request, store, who.user_id, flt, cursor, trim)
    count = min(int_param(request, "count", 10, 1, 1_000) or 10, 10)
    found, after = await select_runs(store, who.user_id, flt, cursor, count)
    views = [await run_log(store, run, trim) for run in found]
    return json({"cursor": after or "", "runs": views})


async def _list_events(
    request: Request,
    store: RunStore,
    user: str,
    flt: RunFilter,
    cursor: str | None,
    trim: int | None,
) -> Response:
    """Every event of the matching runs, newest first; the cursor is an offset."""
    count = int_param(request, "count", 1_000, 1, 1_000) or 1_000
    if cursor is not None and not cursor.isdigit():
        raise BadRequest(f"invalid cursor: {cursor!r} is not a cursor this server returned")
    start = int(cursor or 0)
    state, flt.state = flt.state, None
    runs, _ = await select_runs(store, user, flt, None, 100_000)
    events = [e for run in runs for e in run_events(await run_log(store, run, trim))]
    if state is not None:
        events = [e for e in events if e["state"] == state]
    events.sort(key=lambda e: e["time"], reverse=True)
    page = events[start : start + count]
    after = str(start + count) if start + count < len(events) else ""
    return json({"cursor": after, "events": page})


@api.route(
    "POST /v2/trigger/{workflowUrl:path}",
    "Start a workflow run at a URL (the body is its payload)",
    publish=True,
    response={"type": "object", "properties": {"workflowRunId": STR, "workflowCreatedAt": INT}},
)
async def trigger(
    request: Request, *, runs: Runs, settings: Settings, loops: Loops, url_groups: UrlGroups
) -> Response:
    """``POST /v2/trigger/{url}``: start a run; the raw body is its payload."""
    who = caller(request)
    try:
        url, opts, body = await read_publish(
            request,
            raw_tail(request, "/v2/trigger/"),
            settings,
            loops,
            group_defaults=(url_groups, who.user_id),
        )
    except PlanLimit as exc:  # a run's message: 412
        raise exc.for_workflow() from exc
    unknown = request.headers.get(H.UNKNOWN_SDK)
    started = await runs.trigger(
        who.user_id,
        url,
        opts,
        body,
        caller_ip(request),
        unknown_sdk=unknown is not None and parse_bool(unknown, "Upstash-Workflow-Unknown-Sdk"),
    )
    started.pop("deduplicated", None)
    return json(started)


@api.route("POST /v2/batch/trigger", "Start many workflow runs", body=BATCH, status=201)
async def trigger_many(request: Request, *, batches: Batches, settings: Settings) -> Response:
    """``POST /v2/batch/trigger``: an array of ``{destination, body, headers}``, each started
    as ``/v2/trigger`` would; a bad entry gets ``{"error"}`` in its slot."""
    who = caller(request)
    limit = max(BATCH_LIMIT, settings.message_size_limit)
    entries = await json_body(request, settings, limit=limit)
    if not isinstance(entries, list):
        raise BadRequest("invalid body: expected a JSON array of {destination, body, headers}")
    answers = await batches.trigger(who.user_id, caller_ip(request), entries)
    return json(answers, 201)


def _run_filter(request: Request) -> RunFilter:
    """The run filters common to logs and bulk cancel (``_RUN_FILTER_NAMES``)."""
    query = request.query_params
    return RunFilter(
        run_id=query.get("workflowRunId") or None,
        url=query.get("workflowUrl") or None,
        created_at=int_param(request, "workflowCreatedAt", None, 0, 2**63),
        label=query.get("label") or None,
        from_date=int_param(request, "fromDate", None, 0, 2**63),
        to_date=int_param(request, "toDate", None, 0, 2**63),
        flow_keys=multi(request, "flowControlKey"),
        caller_ip=query.get("callerIp") or query.get("callerIP") or None,
    )


def cancel_filter(request: Request) -> RunFilter:
    """The runs a bulk cancel names by filter (``CANCEL_FILTER_NAMES``): the URL a prefix
    unless ``workflowUrlExactMatch``."""
    flt = _run_filter(request)
    exact = request.query_params.get("workflowUrlExactMatch")
    flt.url_prefix = not (exact is not None and parse_bool(exact, "workflowUrlExactMatch"))
    return flt


def log_filter(request: Request) -> RunFilter:
    """The runs a listing shows (``LOG_FILTER_NAMES``)."""
    flt = _run_filter(request)
    query = request.query_params
    flt.message_id = query.get("messageId") or None
    for item in multi(request, "workflowRuns"):
        run_id, _, created = item.rpartition("@")
        if not run_id or not created.isdigit():
            raise BadRequest(
                f"invalid workflowRuns: {item!r}, want workflowRunId@workflowCreatedAt"
            )
        flt.runs.append((run_id, int(created)))
    state = query.get("state")
    if state:
        if state not in STATES:
            raise BadRequest(f"invalid state: {state!r}, want one of {', '.join(STATES)}")
        flt.state = state
    return flt
