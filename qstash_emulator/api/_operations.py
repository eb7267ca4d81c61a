"""The emulator's own OpenAPI 3.1 document, built from the live route list and the header table.

Paths and methods come from the app's routes, so the document cannot list an endpoint that
does not exist; what each operation takes (query parameters, headers, body) comes from the
table below, and the publish headers from ``_headers.H``. Tools such as schemathesis fuzz
the server from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Route

from .._faults import FAULT_KINDS
from .._headers import H, canonical
from ._filters import FILTER_NAMES

__all__ = ["OPENAPI_PATH", "Op", "accepted_query", "build_document", "operation_key"]

OPENAPI_PATH = "/v2/openapi.json"
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_NAME = re.compile(r"\{(\w+)\}")
_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_STRINGS: dict[str, Any] = {"type": "array", "items": _STR}
_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True)
class Op:
    """What one operation takes and answers, beyond its path and method."""

    summary: str
    query: tuple[str, ...] = ()  # names in _QUERY; the only ones the route accepts
    body: dict[str, Any] | None = None  # JSON schema of a JSON body
    publish: bool = False  # takes the publish headers and any body
    schedule: bool = False  # ... plus the schedule-only headers
    status: int = 200
    response: dict[str, Any] | None = None
    tag: str = "qstash"
    open_query: bool = False  # any query: it belongs to the request the route captures
    public: bool = False  # answers without a token


# Publish-family headers: (description, example). Names from the one header table.
_PUBLISH_HEADERS: dict[str, tuple[str, str]] = {
    H.CONTENT_TYPE: ("forwarded to the destination", "application/json"),
    H.METHOD: ("HTTP method of the delivery (default POST)", "PUT"),
    H.DELAY: ("wait before the first attempt: 10s, 5m, 1h30m, 2d", "10s"),
    H.NOT_BEFORE: ("Unix time in seconds before which nothing is sent", "1767225600"),
    H.RETRIES: ("retries after the first attempt (default 3)", "2"),
    H.RETRY_DELAY: ("milliseconds before a retry: an expression in `retried`", "1000 * retried"),
    H.TIMEOUT: ("how long one attempt may take", "30s"),
    H.DEDUP_ID: ("publishes with the same id within the window are one message", "order-1"),
    H.CONTENT_DEDUP: ("deduplicate by destination, body and headers", "true"),
    H.LABEL: ("labels to filter logs and the DLQ by, comma-separated", "billing"),
    H.REDACT: ("hide body, header or header[Name] in logs and the DLQ", "body"),
    H.FLOW_KEY: ("flow-control key shared by messages that limit each other", "tenant-1"),
    H.FLOW_VALUE: ("parallelism=, rate=, period= for the flow-control key", "parallelism=2"),
    H.HEADER_FORWARD: ("forward every incoming header, not only Upstash-Forward-*", "false"),
    H.CALLBACK: ("URL told about every attempt", "http://127.0.0.1:3000/cb"),
    H.FAILURE_CALLBACK: ("URL told once the message has failed", "http://127.0.0.1:3000/f"),
    # Upstash Workflow: the SDKs send these on every message of a run.
    H.RUN_ID: ("the Upstash Workflow run the message belongs to", "wfr_example"),
    H.RUN_INIT: ("true: the message starts its run; false: it joins a running one", "true"),
    H.RUN_URL: ("the run's workflow endpoint", "http://127.0.0.1:3000/workflow"),
    H.CALL_TYPE: ("step, toCallback, fromCallback or failureCall", "step"),
    H.INVOKE: ("true: the body is a context.invoke envelope", "false"),
    H.FEATURE_SET: ("the SDK's capabilities, comma-separated", "LazyFetch,InitialBody"),
    H.TRIGGER_BY_SDK: (
        "true: the SDK's own start of a run the trigger API created for it",
        "false",
    ),
}
_CALLBACK_OPTIONS = {
    "method": ("HTTP method of the callback", "POST"),
    "timeout": ("timeout of one callback attempt", "10s"),
    "retries": ("retries of the callback", "1"),
    "retry-delay": ("milliseconds before a callback retry", "1000"),
    "delay": ("wait before the callback is sent", "1s"),
}
_SCHEDULE_HEADERS: dict[str, tuple[str, str]] = {
    H.CRON: ("when to publish: five cron fields, optionally CRON_TZ=Zone first", "*/5 * * * *"),
    H.SCHEDULE_ID: ("the schedule's id; an existing one is replaced", "nightly"),
    H.QUEUE_NAME: ("publish each run through this queue", "jobs"),
}

_FILTERS = FILTER_NAMES
_QUERY: dict[str, tuple[dict[str, Any], str]] = {
    **{name: (_STR, "filter; repeated or comma-separated values") for name in _FILTERS},
    "cursor": (_STR, "where the previous page ended"),
    "count": ({"type": "integer", "minimum": 1}, "page size"),
    "offset": ({"type": "integer", "minimum": 0}, "how many to skip"),
    "order": ({"enum": ["latestFirst", "earliestFirst"]}, "newest (default) or oldest first"),
    "fromDate": (_INT, "Unix milliseconds, inclusive"),
    "toDate": (_INT, "Unix milliseconds, inclusive"),
    "responseStatus": (_INT, "HTTP status of the last attempt"),
    "host": (_STR, "destination host"),
    "path": (_STR, "destination path"),
    "messageIds": (_STR, "message ids, repeated or comma-separated"),
    "dlqIds": (_STR, "DLQ ids, repeated or comma-separated"),
    "search": (_STR, "substring of the key"),
    "parallelism": (_STR, "pin: an integer; unpin: true or false"),
    "rate": (_STR, "pin: an integer; unpin: true or false"),
    "period": ({"type": "integer", "minimum": 1}, "rate period in seconds"),
    "cancel": ({"type": "boolean"}, "false: the run returned (the SDK's end of a run)"),
    "workflowRunId": (_STR, "a run id"),
    "workflowRunIds": (_STR, "run ids, repeated or comma-separated"),
    "workflowUrl": (_STR, "the workflow endpoint (a prefix for bulk cancel)"),
    "workflowUrlExactMatch": ({"type": "boolean"}, "bulk cancel: the URL must match exactly"),
    "workflowCreatedAt": (_INT, "Unix milliseconds: one run of a reused id"),
    "workflowRuns": (_STR, "runs as workflowRunId@workflowCreatedAt, comma-separated"),
    "trimBody": (_INT, "cut bodies to this many bytes; -1 leaves them out"),
    "groupBy": ({"enum": ["workflowRunId"]}, "runs with their steps"),
    "source": ({"enum": ["workflow"]}, "only the dead letters of workflow runs"),
    "failureFunctionState": (
        {"enum": ["CALLBACK_INPROGRESS", "CALLBACK_SUCCESS", "CALLBACK_FAIL", "CALLBACK_CANCELED"]},
        "the failed run's failure function call",
    ),
}
_RUN_DLQ_FILTERS = ("workflowUrl", "workflowRunId", "workflowCreatedAt", "failureFunctionState")
_RUN_DLQ = (
    *_RUN_DLQ_FILTERS,
    "label",
    "callerIp",
    "flowControlKey",
    "fromDate",
    "toDate",
    "url",
    "responseStatus",
)
_RUN_FILTERS = (
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

_MESSAGE_ID = {"type": "object", "properties": {"messageId": _STR, "url": _STR}}
_PUBLISHED = {"oneOf": [_MESSAGE_ID, {"type": "array", "items": _MESSAGE_ID}]}
_IDS = {"type": "object", "properties": {"messageIds": _STRINGS, **dict.fromkeys(_FILTERS, _STR)}}
_DLQ_IDS = {"type": "object", "properties": {"dlqIds": _STRINGS, **dict.fromkeys(_FILTERS, _STR)}}
_ENDPOINTS = {
    "type": "object",
    "required": ["endpoints"],
    "properties": {
        "endpoints": {
            "type": "array",
            "items": {"type": "object", "properties": {"url": _STR, "name": _STR}},
        }
    },
}
_BATCH = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["destination"],
        "properties": {
            "destination": _STR,
            "queue": {"type": ["string", "null"]},
            "body": _STR,
            "headers": {"type": "object", "additionalProperties": _STR},
        },
    },
}
_QUEUE = {
    "type": "object",
    "required": ["queueName"],
    "properties": {
        "queueName": _STR,
        "parallelism": {"type": "integer", "minimum": 1},
        "paused": {"type": "boolean"},
    },
}
_GROUP_HEADERS = {
    "type": "object",
    "required": ["headers"],
    "properties": {"headers": {"type": "object", "additionalProperties": _STR}},
}
_FAULT = {
    "type": "object",
    "properties": {
        "kind": {"enum": list(FAULT_KINDS)},
        "status": _INT,
        "path": _STR,
        "method": _STR,
        "times": {"type": ["integer", "null"]},
        "delayMs": _INT,
        "headers": {"type": "object", "additionalProperties": _STR},
        "error": _STR,
    },
}
_LISTING = ("cursor", "count", "order", *_FILTERS)
_STARTED = {"type": "object", "properties": {"workflowRunId": _STR, "workflowCreatedAt": _INT}}
_WAIT = {
    "type": "object",
    "required": ["url", "step"],
    "properties": {
        "url": _STR,
        "timeout": _STR,
        "timeoutUrl": _STR,
        "timeoutBody": _STR,
        "timeoutHeaders": {"type": "object", "additionalProperties": _STRINGS},
        "step": {"type": "object", "properties": {"stepId": _INT, "stepName": _STR}},
    },
}

_OPS: dict[tuple[str, str], Op] = {
    ("POST", "/v2/publish/{destination}"): Op(
        "Publish to a URL or a URL group", publish=True, response=_PUBLISHED
    ),
    ("POST", "/v2/enqueue/{queue}/{destination}"): Op(
        "Publish through a FIFO queue (created with parallelism 1 if missing)",
        publish=True,
        response=_PUBLISHED,
    ),
    ("POST", "/v2/batch"): Op("Many publishes and enqueues in one call", body=_BATCH),
    ("GET", "/v2/messages/{messageId}"): Op("A message that is not yet final"),
    ("DELETE", "/v2/messages/{messageId}"): Op("Cancel one message"),
    ("DELETE", "/v2/messages"): Op(
        "Cancel messages by id or filter",
        query=("messageIds", "count", *_FILTERS, "host", "path"),
        body=_IDS,
    ),
    ("GET", "/v2/logs"): Op("Log rows, one per state change", query=(*_LISTING, "host", "path")),
    ("GET", "/v2/events"): Op(
        "Log rows (the name the SDKs call)", query=(*_LISTING, "host", "path")
    ),
    ("GET", "/v2/dlq"): Op(
        "Dead letters (source=workflow: those of workflow runs)",
        query=(*_LISTING, "dlqIds", "source", *_RUN_DLQ_FILTERS),
    ),
    ("DELETE", "/v2/dlq"): Op("Delete dead letters", query=(*_LISTING, "dlqIds"), body=_DLQ_IDS),
    ("POST", "/v2/dlq/retry"): Op(
        "Publish dead letters again", query=(*_LISTING, "dlqIds"), body=_DLQ_IDS, status=201
    ),
    ("POST", "/v2/dlq/retry/{dlqId}"): Op("Publish one dead letter again", status=201),
    ("GET", "/v2/dlq/{dlqId}"): Op("One dead letter"),
    ("DELETE", "/v2/dlq/{dlqId}"): Op("Delete one dead letter"),
    ("GET", "/v2/keys"): Op("The signing keys"),
    ("POST", "/v2/keys/rotate"): Op("Rotate the signing keys: next becomes current"),
    ("GET", "/v2/topics"): Op("URL groups"),
    ("GET", "/v2/topics/{name}"): Op("One URL group"),
    ("DELETE", "/v2/topics/{name}"): Op("Delete a URL group"),
    ("PATCH", "/v2/topics/{name}"): Op("Set a URL group's default headers", body=_GROUP_HEADERS),
    ("POST", "/v2/topics/{name}/endpoints"): Op(
        "Add endpoints (creates the group)", body=_ENDPOINTS
    ),
    ("DELETE", "/v2/topics/{name}/endpoints"): Op("Remove endpoints", body=_ENDPOINTS),
    ("POST", "/v2/queues"): Op("Create or change a queue", body=_QUEUE),
    ("GET", "/v2/queues"): Op("Queues"),
    ("GET", "/v2/queues/{name}"): Op("One queue"),
    ("DELETE", "/v2/queues/{name}"): Op("Delete a queue; its waiting messages are cancelled"),
    ("POST", "/v2/queues/{name}/pause"): Op("Pause a queue"),
    ("POST", "/v2/queues/{name}/resume"): Op("Resume a queue"),
    ("POST", "/v2/schedules/{destination}"): Op(
        "Create or replace a schedule (the path holds the destination)",
        publish=True,
        schedule=True,
    ),
    ("GET", "/v2/schedules"): Op("Schedules"),
    ("GET", "/v2/schedules/{scheduleId}"): Op("One schedule"),
    ("DELETE", "/v2/schedules/{scheduleId}"): Op("Delete a schedule"),
    ("POST", "/v2/schedules/{scheduleId}/pause"): Op("Pause a schedule"),
    ("PATCH", "/v2/schedules/{scheduleId}/pause"): Op("Pause a schedule (as the SDKs send it)"),
    ("POST", "/v2/schedules/{scheduleId}/resume"): Op("Resume a schedule"),
    ("PATCH", "/v2/schedules/{scheduleId}/resume"): Op("Resume a schedule (as the SDKs send it)"),
    ("GET", "/v2/Schedules/{scheduleId}"): Op("One schedule (the Go SDK's spelling)"),
    ("POST", "/v2/Schedules/{destination}"): Op(
        "Create a schedule (the Go SDK's spelling)", publish=True, schedule=True
    ),
    ("POST", "/v2/trigger/{workflowUrl}"): Op(
        "Start a workflow run at a URL (the body is its payload)",
        publish=True,
        response={
            "type": "object",
            "properties": {"workflowRunId": _STR, "workflowCreatedAt": _INT},
        },
    ),
    ("POST", "/v2/batch/trigger"): Op("Start many workflow runs", body=_BATCH, status=201),
    ("DELETE", "/v2/workflows/runs/{workflowRunId}"): Op(
        "Cancel a workflow run, or end it with its result (cancel=false)", query=("cancel",)
    ),
    ("GET", "/v2/workflows/runs/{workflowRunId}"): Op("A running workflow run's messages"),
    ("DELETE", "/v2/workflows/runs"): Op(
        "Cancel workflow runs by id or filter",
        query=("workflowRunIds", "workflowUrlExactMatch", "count", *_RUN_FILTERS),
    ),
    ("GET", "/v2/workflows/logs"): Op(
        "Workflow runs with their steps, newest first",
        query=("cursor", "count", "state", "workflowRuns", "messageId", "trimBody", *_RUN_FILTERS),
    ),
    ("GET", "/v2/workflows/events"): Op(
        "Workflow runs with their steps (groupBy=workflowRunId, as the JS client asks)",
        query=(
            "groupBy",
            "cursor",
            "count",
            "state",
            "workflowRuns",
            "messageId",
            "trimBody",
            *_RUN_FILTERS,
        ),
    ),
    ("POST", "/v2/wait/{eventId}"): Op(
        "A workflow step waits for an event (its headers configure the result's publish)",
        body=_WAIT,
    ),
    ("POST", "/v2/notify/{eventId}"): Op("Notify every waiter of an event (the body is the data)"),
    ("POST", "/v2/notify/{workflowRunId}/{eventId}"): Op(
        "Notify one run; kept for it if it does not wait yet"
    ),
    ("GET", "/v2/waiters/{eventId}"): Op("The waiters of an event"),
    **{
        (method, "/v2/workflows/hooks/{userId}/{workflowRunId}/{eventId}"): Op(
            "A run's webhook URL (no token): the request is the waiting step's event",
            open_query=True,
        )
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    },
    ("GET", "/v2/workflows/dlq"): Op(
        "Dead letters of workflow runs", query=("cursor", "count", "order", "dlqIds", *_RUN_DLQ)
    ),
    ("DELETE", "/v2/workflows/dlq"): Op(
        "Delete dead letters of workflow runs", query=("cursor", "count", "dlqIds", *_RUN_DLQ)
    ),
    ("GET", "/v2/workflows/dlq/{dlqId}"): Op("One dead letter of a workflow run"),
    ("DELETE", "/v2/workflows/dlq/{dlqId}"): Op("Delete one dead letter of a workflow run"),
    **{
        ("POST", f"/v2/workflows/dlq/{action}"): Op(
            f"{action.capitalize()} failed workflow runs (at most 50 a call), each as a new run",
            query=("cursor", "count", "dlqIds", *_RUN_DLQ),
        )
        for action in ("resume", "restart")
    },
    ("POST", "/v2/workflows/dlq/resume/{dlqId}"): Op(
        "Continue a failed run where it failed, as a new run keeping its steps"
    ),
    ("POST", "/v2/workflows/dlq/restart/{dlqId}"): Op(
        "Start a failed run again from its first step, as a new run"
    ),
    ("POST", "/v2/workflows/dlq/callback/{dlqId}"): Op(
        "Call a failed run's failure function again (when its call failed)"
    ),
    ("DELETE", "/v2/workflows/dlq/callback/{dlqId}"): Op(
        "Stop a failed run's failure function call in progress"
    ),
    ("GET", "/v2/flowControl"): Op("Flow-control keys", query=("search",)),
    ("GET", "/v2/globalParallelism"): Op("Parallelism in use across all keys"),
    ("GET", "/v2/flowControl/{key}"): Op("One flow-control key"),
    ("POST", "/v2/flowControl/{key}/pause"): Op("Pause a flow-control key"),
    ("POST", "/v2/flowControl/{key}/resume"): Op("Resume a flow-control key"),
    ("POST", "/v2/flowControl/{key}/pin"): Op(
        "Pin a key's parallelism and/or rate", query=("parallelism", "rate", "period")
    ),
    ("POST", "/v2/flowControl/{key}/unpin"): Op("Unpin", query=("parallelism", "rate")),
    ("POST", "/v2/flowControl/{key}/resetRate"): Op("Start a new rate window"),
    ("POST", "/v2/flowControl/{key}/reset"): Op("Start a new rate window (newer name)"),
    (
        "GET",
        OPENAPI_PATH,
    ): Op("This document", tag="emulator"),
    ("GET", "/_emulator/health"): Op(
        "Readiness probe, no token: version, store, uptime",
        tag="emulator",
        public=True,
        response={
            "type": "object",
            "required": ["status", "emulator", "version", "store", "uptimeMs"],
            "properties": {
                "status": {"const": "ok"},
                "emulator": {"const": "qstash-emulator"},
                "version": _STR,
                "store": {"enum": ["memory", "redis"]},
                "uptimeMs": {"type": "integer", "minimum": 0},
            },
        },
    ),
    ("GET", "/_emulator/messages"): Op(
        "Waiting messages by state; with count (and offset) a page, the total and counts",
        ("state", "count", "offset", "messageId"),
        tag="emulator",
    ),
    ("GET", "/_emulator/dlq"): Op("Dead letters, unpaged", tag="emulator"),
    ("GET", "/_emulator/attempts"): Op("Delivery attempts", ("messageId",), tag="emulator"),
    ("GET", "/_emulator/schedules/{scheduleId}/times"): Op(
        "A schedule's next run times", ("count",), tag="emulator"
    ),
    ("POST", "/_emulator/run-now/{id}"): Op("Make a message or schedule due now", tag="emulator"),
    ("GET", "/_emulator/clock"): Op("The emulator's clock", tag="emulator"),
    ("GET", "/_emulator/faults"): Op("Programmed API faults", tag="emulator"),
    ("POST", "/_emulator/faults"): Op(
        "Program an API fault", body=_FAULT, status=201, tag="emulator"
    ),
    ("DELETE", "/_emulator/faults"): Op("Clear programmed API faults", tag="emulator"),
}


def operation_key(route: Route, method: str) -> tuple[str, str]:
    """How ``_OPS`` names a route's method: its path with ``{x:path}`` written ``{x}``."""
    return method, _PARAM.sub(r"{\1}", route.path)


def accepted_query(routes: Iterable[BaseRoute]) -> dict[tuple[Any, str], frozenset[str] | None]:
    """The query names each (endpoint, method) accepts; None for a publish, whose query is
    the destination's own. Endpoints not in the table are not listed."""
    accepted: dict[tuple[Any, str], frozenset[str] | None] = {}
    for route in routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        for method in route.methods:
            op = _OPS.get(operation_key(route, "GET" if method == "HEAD" else method))
            if op is not None:
                open_query = op.publish or op.open_query
                names = None if open_query else frozenset(op.query) | {"qstash_token"}
                accepted[(route.endpoint, method)] = names
    return accepted


def _header(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "name": canonical(name),
        "in": "header",
        "required": False,
        "description": description,
        "schema": _STR,
        "example": example,
    }


def _publish_headers(schedule: bool) -> list[dict[str, Any]]:
    params = [_header(n, d, e) for n, (d, e) in _PUBLISH_HEADERS.items()]
    for prefix in (H.CALLBACK, H.FAILURE_CALLBACK):
        params.extend(
            _header(f"{prefix}-{suffix}", d, e) for suffix, (d, e) in _CALLBACK_OPTIONS.items()
        )
    if schedule:
        params.extend(_header(n, d, e) for n, (d, e) in _SCHEDULE_HEADERS.items())
    return params


def _operation(op: Op, path_params: list[str], operation_id: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for p in path_params
    ]
    for name in dict.fromkeys(op.query):
        schema, description = _QUERY.get(name, (_STR, ""))
        params.append(
            {"name": name, "in": "query", "required": False, "schema": schema}
            | ({"description": description} if description else {})
        )
    if op.publish:
        params.extend(_publish_headers(op.schedule))
    out: dict[str, Any] = {
        "operationId": operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": {
            str(op.status): {
                "description": "success",
                **(
                    {"content": {"application/json": {"schema": op.response}}}
                    if op.response
                    else {}
                ),
            },
            "4XX": {"$ref": "#/components/responses/Error"},
        },
    }
    if op.public:
        out["security"] = []
    if op.publish:
        out["requestBody"] = {
            "required": False,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "text/plain": {"schema": _STR},
                "application/json": {"schema": {}},
            },
        }
    elif op.body is not None:
        out["requestBody"] = {
            "required": op.body.get("type") != "object" or "required" in op.body,
            "content": {"application/json": {"schema": op.body}},
        }
    return out


def _operation_id(method: str, path: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path.replace("{", "by_")) if w]
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words)


def build_document(routes: Iterable[BaseRoute], version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route; unknown routes get a bare entry."""
    paths: dict[str, dict[str, Any]] = {}
    shapes: dict[str, str] = {}  # /v2/x/{} -> the first path written with that shape
    for route in routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            key = operation_key(route, method)
            op = _OPS.get(key) or Op((route.endpoint.__doc__ or route.name).split("\n")[0])
            # OpenAPI forbids two templates of one shape (/s/{id} and /s/{destination}):
            # the later one is written with the first one's parameter names.
            shape = _PARAM.sub("{}", key[1])
            path = shapes.setdefault(shape, key[1])
            item = paths.setdefault(path, {})
            if method.lower() in item:
                continue
            item[method.lower()] = _operation(
                op, _NAME.findall(path), _operation_id(method, key[1])
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qstash-emulator",
            "version": version,
            "description": "A local Upstash QStash v2 API. Every error is a 4xx "
            'or 5xx with {"error": "..."} naming the field.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"queryToken": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "qstash_token"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": _STR},
                    "additionalProperties": False,
                }
            },
            "responses": {
                "Error": {
                    "description": 'bad input, auth or quota: {"error": "..."}',
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
        },
    }
