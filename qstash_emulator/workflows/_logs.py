"""Workflow run logs: a run as ``GET /v2/workflows/logs`` shows it, and the run filters.

A run's steps are the step results recorded in it, oldest first: the ``init`` step (the
trigger's payload), then one group per step, or one group for the results of a parallel block.
While messages of the run are not delivered, a last ``next`` group shows each with its state
and the errors of its failed attempts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import _json
from .._errors import BadRequest
from ..model.options import option_view
from ..model.views import header_view, redacted
from ._model import CallType, Run, RunStep
from ._store import RunStore

__all__ = ["STATES", "RunFilter", "run_events", "run_log", "select_runs"]

_RUN_STATES = ("RUN_STARTED", "RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED")
_STEP_STATES = ("STEP_SUCCESS", "STEP_RETRY", "STEP_FAILED", "STEP_PROGRESS", "STEP_CANCELED")
STATES = _RUN_STATES + _STEP_STATES


@dataclass
class RunFilter:
    """Which runs a listing (or a bulk action) applies to; unset fields match every run."""

    run_id: str | None = None
    url: str | None = None
    url_prefix: bool = False
    created_at: int | None = None
    runs: list[tuple[str, int]] = field(default_factory=list)
    state: str | None = None
    label: str | None = None
    from_date: int | None = None
    to_date: int | None = None
    flow_keys: list[str] = field(default_factory=list)
    caller_ip: str | None = None
    message_id: str | None = None

    def matches(self, run: Run) -> bool:
        if self.runs:
            return (run.run_id, run.created_at) in self.runs
        if self.run_id is not None and run.run_id != self.run_id:
            return False
        if self.url is not None and not (
            run.url.startswith(self.url) if self.url_prefix else run.url == self.url
        ):
            return False
        if self.created_at is not None and run.created_at != self.created_at:
            return False
        if self.label is not None and self.label not in run.options.labels:
            return False
        if self.from_date is not None and run.created_at < self.from_date:
            return False
        if self.to_date is not None and run.created_at > self.to_date:
            return False
        if self.flow_keys and (
            run.options.flow is None or run.options.flow["key"] not in self.flow_keys
        ):
            return False
        if self.caller_ip is not None and run.caller_ip != self.caller_ip:
            return False
        return self.state is None or self.state not in _RUN_STATES or run.state == self.state


async def select_runs(
    store: RunStore, user: str, flt: RunFilter, cursor: str | None, count: int
) -> tuple[list[Run], str | None]:
    """Up to ``count`` matching runs, newest first, from ``cursor`` (a run's ``id@createdAt``,
    the first of the page); the cursor of the next page, or None at the end."""
    refs = await store.refs(user)
    start = 0
    if cursor:
        name, _, created = cursor.rpartition("@")
        try:
            start = refs.index((name, int(created)))
        except ValueError as exc:
            raise BadRequest(f"invalid cursor: {cursor!r}") from exc
    found: list[Run] = []
    for index in range(start, len(refs)):
        run_id, created_at = refs[index]
        if flt.runs and (run_id, created_at) not in flt.runs:
            continue
        if flt.run_id is not None and run_id != flt.run_id:
            continue
        run = await store.get(user, run_id, created_at)
        if run is None or not flt.matches(run):
            continue
        if flt.state in _STEP_STATES or flt.message_id is not None:
            log = await run_log(store, run)
            if flt.state in _STEP_STATES and not _has_state(log, flt.state):
                continue
            if flt.message_id is not None and not _has_message(log, flt.message_id):
                continue
        if len(found) == count:
            return found, f"{run_id}@{created_at}"
        found.append(run)
    return found, None


@dataclass(frozen=True)
class _Shown:
    """How bodies and headers show: hidden as the run's redaction says, then cut to
    ``trim`` bytes (-1: left out)."""

    trim: int | None
    redact: list[str]

    def body(self, value: Any) -> Any:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            return value
        if value and "body" in self.redact:
            value = redacted(value)
        return _trim(value, self.trim)

    def headers(self, header: dict[str, list[str]]) -> dict[str, list[str]]:
        return header_view(header, self.redact)


async def run_log(store: RunStore, run: Run, trim: int | None = None) -> dict[str, Any]:
    """The run as the logs show it (``trim``: bodies cut to that many bytes, -1 none); what
    the trigger's ``Upstash-Redact-Fields`` names is hidden as in the message logs."""
    steps = await store.steps(run)
    statuses = await store.statuses(run)
    invoked = await store.invoked(run)
    shown = _Shown(trim, run.options.redact)
    view: dict[str, Any] = {
        "workflowRunId": run.run_id,
        "workflowUrl": run.url,
        "workflowState": run.state,
        "workflowRunCreatedAt": run.created_at,
        "workflowRunCallerIp": run.caller_ip,
        "steps": _groups(steps, statuses, invoked, run, shown),
    }
    if run.completed_at is not None:
        view["workflowRunCompletedAt"] = run.completed_at
    if run.response is not None:
        view["workflowRunResponse"] = shown.body(run.response)
    if run.invoker is not None:
        view["invoker"] = {
            "workflowRunId": run.invoker["workflowRunId"],
            "workflowUrl": run.invoker["workflowUrl"],
            "workflowRunCreatedAt": run.invoker.get("workflowRunCreatedAt"),
        }
    if run.failure is not None:
        view["failureFunction"] = run.failure
    if run.dlq_id is not None:
        view["dlqId"] = run.dlq_id
    view.update(option_view(run.options, "run"))
    return view


def run_events(log: dict[str, Any]) -> list[dict[str, Any]]:
    """A run's log as separate events, newest first: the run's start, each step, each failed
    attempt, and its end (``/v2/workflows/events`` without ``groupBy``)."""
    base = {
        "workflowRunId": log["workflowRunId"],
        "workflowUrl": log["workflowUrl"],
        "workflowCreatedAt": log["workflowRunCreatedAt"],
        "callerIp": log["workflowRunCallerIp"],
    }
    if "label" in log:
        base["label"] = log["label"]
    started = {**base, "time": log["workflowRunCreatedAt"], "state": "RUN_STARTED"}
    if "invoker" in log:
        invoker = log["invoker"]
        started.update(
            invokerWorkflowRunId=invoker["workflowRunId"],
            invokerWorkflowUrl=invoker["workflowUrl"],
            invokerWorkflowCreatedAt=invoker["workflowRunCreatedAt"],
        )
    events = [started]
    for group in log["steps"]:
        for step in group["steps"]:
            if group["type"] != "next":
                info = {k: v for k, v in step.items() if k != "headers"}
                events.append(
                    {
                        **base,
                        "time": step["createdAt"],
                        "state": step["state"],
                        "stepInfo": info,
                        "headers": step["headers"],
                    }
                )
                continue
            for error in step.get("errors", []):
                events.append(
                    {
                        **base,
                        "time": error["time"],
                        "state": "STEP_RETRY",
                        "stepInfo": {"messageId": step["messageId"], "state": "STEP_RETRY"},
                        "error": error["error"],
                        "responseStatus": error["status"],
                        "responseBody": error["body"],
                        "responseHeaders": error["headers"],
                    }
                )
            if step["state"] in ("STEP_FAILED", "STEP_CANCELED") and step.get("errors"):
                events[-1]["state"] = step["state"]
                events[-1]["stepInfo"]["state"] = step["state"]
    if "workflowRunCompletedAt" in log:
        ended = {**base, "time": log["workflowRunCompletedAt"], "state": log["workflowState"]}
        for key in ("workflowRunResponse", "dlqId"):
            if key in log:
                ended[key] = log[key]
        events.append(ended)
    events.sort(key=lambda e: e["time"], reverse=True)
    return events


def _groups(
    steps: list[RunStep],
    statuses: dict[str, dict[str, Any]],
    invoked: dict[str, dict[str, Any]],
    run: Run,
    shown: _Shown,
) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    if not steps:
        return groups
    first = steps[0]
    init = _base(first, shown)
    init.update(stepId=0, stepName="init", stepType="Initial")
    init.update(_out(first, first.body, shown))
    groups.append({"type": "sequential", "steps": [init]})
    last_call: RunStep | None = None
    for step in steps[1:]:
        if step.call_type == CallType.TO_CALLBACK:
            last_call = step
        if step.call_type != CallType.STEP:
            continue
        body = _object(step.body)
        if body is None or "stepName" not in body:
            continue
        if body.get("stepId") == 0 and body.get("targetStep") is not None:
            continue  # a parallel block's plan: its result is what the logs show
        entry = _step_log(step, body, shown)
        entry.update(invoked.get(step.message_id, {}))
        if body.get("stepType") == "Call" and last_call is not None:
            entry.update(_call(last_call, body.get("out"), shown))
        concurrent = int(body.get("concurrent") or 1)
        if concurrent > 1 and groups[-1]["type"] == "parallel":
            groups[-1]["steps"].append(entry)
        else:
            kind = "parallel" if concurrent > 1 else "sequential"
            groups.append({"type": kind, "steps": [entry]})
    for group in groups:  # a block's results come back in any order: show them by step id
        if group["type"] == "parallel":
            group["steps"].sort(key=lambda s: s.get("stepId") or 0)
    pending = _pending(steps, statuses, run)
    if pending:
        groups.append({"type": "next", "steps": pending})
    return groups


def _base(step: RunStep, shown: _Shown) -> dict[str, Any]:
    return {
        "callType": step.call_type,
        "messageId": step.message_id,
        "concurrent": 1,
        "state": "STEP_SUCCESS",
        "createdAt": step.at,
        "headers": shown.headers(step.header),
        "retries": step.retries,
    }


def _step_log(step: RunStep, body: dict[str, Any], shown: _Shown) -> dict[str, Any]:
    entry = _base(step, shown)
    entry.update(
        stepId=body.get("stepId"),
        stepName=body["stepName"],
        stepType=body.get("stepType"),
        concurrent=body.get("concurrent") or 1,
    )
    if body.get("out") is not None or step.body_dropped:
        entry.update(_out(step, body.get("out"), shown))
    for key in ("sleepFor", "sleepUntil"):
        if body.get(key) is not None:
            entry[key] = body[key]
    if body.get("waitEventId"):
        entry["waitEventId"] = body["waitEventId"]
        entry["waitTimeoutDuration"] = body.get("timeout")
        entry["waitTimeout"] = bool(body.get("waitTimeout"))
    return entry


def _out(step: RunStep, out: Any, shown: _Shown) -> dict[str, Any]:
    """A step's result, or ``outDropped`` once the body budget dropped it (an ended run)."""
    return {"outDropped": True} if step.body_dropped else {"out": shown.body(out)}


def _call(call: RunStep, out: Any, shown: _Shown) -> dict[str, Any]:
    """The third party's request (from the call message) and answer (the result's ``out``)."""
    fields: dict[str, Any] = {
        "callUrl": call.url,
        "callMethod": call.method,
        "callHeaders": shown.headers(call.header),
    }
    if call.body_dropped:
        fields["callBodyDropped"] = True
    else:
        fields["callBody"] = shown.body(call.body)
    answer = _object(out.encode() if isinstance(out, str) else b"")
    if answer is not None:
        fields["callResponseStatus"] = answer.get("status")
        fields["callResponseBody"] = shown.body(answer.get("body"))
        fields["callResponseHeaders"] = shown.headers(answer.get("header", {}))
    return fields


def _pending(
    steps: list[RunStep], statuses: dict[str, dict[str, Any]], run: Run
) -> list[dict[str, Any]]:
    """The run's messages not delivered (yet): in progress, retrying, failed or cancelled."""
    out = []
    for step in steps:
        status = statuses.get(step.message_id)
        if status is None:
            if run.ended:
                continue
            status = {"state": "STEP_PROGRESS", "retries": 0}
        if status.get("state") == "delivered":
            continue
        entry: dict[str, Any] = {
            "messageId": step.message_id,
            "state": status["state"],
            "retries": status.get("retries", 0),
        }
        if status.get("retryDelay"):
            entry["retryDelay"] = status["retryDelay"]
        if status.get("errors"):
            entry["errors"] = status["errors"]
        out.append(entry)
    return out


def _has_state(log: dict[str, Any], state: str) -> bool:
    return any(s.get("state") == state for g in log["steps"] for s in g["steps"])


def _has_message(log: dict[str, Any], message_id: str) -> bool:
    return any(s.get("messageId") == message_id for g in log["steps"] for s in g["steps"])


def _object(data: bytes) -> dict[str, Any] | None:
    try:
        value = _json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _trim(value: Any, trim: int | None) -> Any:
    if trim is None or not isinstance(value, str):
        return value
    if trim < 0:
        return None
    return value.encode()[:trim].decode("utf-8", "ignore")
