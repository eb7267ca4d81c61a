"""The emulator's own OpenAPI 3.1 document, built from the routes the app serves.

Each API route declares its operation beside its handler (``_declare``): method, path, query
names, body and answers; this module writes them out, with the publish headers from the
parser's own table (``model.headers.RULES``) and a description for each query name. Tools
such as schemathesis fuzz the server from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Route

from ..model.headers import CALLBACK_OPTIONS, H, documented
from ..model.sendable import canonical
from ._declare import Operation, OperationRoute
from ._filters import FILTER_NAMES
from ._schemas import INT, STR
from .workflow_dlq import FAILURE_STATES

__all__ = ["OPENAPI_PATH", "build_document", "operation_of"]

OPENAPI_PATH = "/v2/openapi.json"
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_NAME = re.compile(r"\{(\w+)\}")


_QUERY: dict[str, tuple[dict[str, Any], str]] = {
    **{name: (STR, "filter; repeated or comma-separated values") for name in FILTER_NAMES},
    "cursor": (STR, "where the previous page ended"),
    "count": ({"type": "integer", "minimum": 1}, "page size"),
    "offset": ({"type": "integer", "minimum": 0}, "how many to skip"),
    "order": ({"enum": ["latestFirst", "earliestFirst"]}, "newest (default) or oldest first"),
    "fromDate": (INT, "Unix milliseconds, inclusive"),
    "toDate": (INT, "Unix milliseconds, inclusive"),
    "responseStatus": (INT, "HTTP status of the last attempt"),
    "host": (STR, "destination host"),
    "path": (STR, "destination path"),
    "messageIds": (STR, "message ids, repeated or comma-separated"),
    "dlqIds": (STR, "DLQ ids, repeated or comma-separated"),
    "search": (STR, "substring of the key"),
    "parallelism": (STR, "pin: an integer; unpin: true or false"),
    "rate": (STR, "pin: an integer; unpin: true or false"),
    "period": ({"type": "integer", "minimum": 1}, "rate period in seconds"),
    "cancel": ({"type": "boolean"}, "false: the run returned (the SDK's end of a run)"),
    "workflowRunId": (STR, "a run id"),
    "workflowRunIds": (STR, "run ids, repeated or comma-separated"),
    "workflowUrl": (STR, "the workflow endpoint (a prefix for bulk cancel)"),
    "workflowUrlExactMatch": ({"type": "boolean"}, "bulk cancel: the URL must match exactly"),
    "workflowCreatedAt": (INT, "Unix milliseconds: one run of a reused id"),
    "workflowRuns": (STR, "runs as workflowRunId@workflowCreatedAt, comma-separated"),
    "trimBody": (INT, "cut bodies to this many bytes; -1 leaves them out"),
    "groupBy": ({"enum": ["workflowRunId"]}, "runs with their steps"),
    "source": ({"enum": ["workflow"]}, "only the dead letters of workflow runs"),
    "failureFunctionState": (
        {"enum": list(FAILURE_STATES)},
        "the failed run's failure function call",
    ),
}


def operation_of(route: Route, method: str) -> Operation:
    """The operation a route declared for ``method``; a route outside the API (none
    declared) gets one named by its handler's docstring."""
    if isinstance(route, OperationRoute):
        return route.operation
    summary = (route.endpoint.__doc__ or route.name).split("\n")[0]
    return Operation(method, route.path, summary, route.endpoint)


def _header(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "name": canonical(name),
        "in": "header",
        "required": False,
        "description": description,
        "schema": STR,
        "example": example,
    }


def _publish_headers(schedule: bool) -> list[dict[str, Any]]:
    params = [_header(n, d, e) for n, (d, e) in documented(schedule=False).items()]
    for prefix in (H.CALLBACK, H.FAILURE_CALLBACK):
        params.extend(
            _header(f"{prefix}-{suffix}", d, e) for suffix, (d, e) in CALLBACK_OPTIONS.items()
        )
    if schedule:
        params.extend(_header(n, d, e) for n, (d, e) in documented(schedule=True).items())
    return params


def _operation(op: Operation, path_params: list[str], operation_id: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for p in path_params
    ]
    for name in dict.fromkeys(op.query):
        schema, description = _QUERY.get(name, (STR, ""))
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
    if op.tokenless:
        out["security"] = []
    if op.publish:
        out["requestBody"] = {
            "required": False,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "text/plain": {"schema": STR},
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
            key = (method, _PARAM.sub(r"{\1}", route.path))
            op = operation_of(route, method)
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
                    "properties": {"error": STR},
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
