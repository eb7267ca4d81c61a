"""Waits of Upstash Workflow runs: ``/v2/wait``, ``/v2/notify``, ``/v2/waiters`` and the
webhook URLs runs hand out (``/v2/workflows/hooks/...``, called without a token)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .. import _json
from .._errors import NotFound
from ..server.config import Settings
from ..services.users import Users
from ..workflows import Waits
from ._common import caller, json, json_body, read_body
from ._declare import Operations
from ._schemas import INT, STR, STRINGS, string_map

__all__ = ["api"]

api = Operations()
_WAIT = {
    "type": "object",
    "required": ["url", "step"],
    "properties": {
        "url": STR,
        "timeout": STR,
        "timeoutUrl": STR,
        "timeoutBody": STR,
        "timeoutHeaders": string_map(STRINGS),
        "step": {"type": "object", "properties": {"stepId": INT, "stepName": STR}},
    },
}


@api.route(
    "POST /v2/wait/{eventId}",
    "A workflow step waits for an event (its headers configure the result's publish)",
    body=_WAIT,
)
async def wait(request: Request, *, waits: Waits, settings: Settings) -> Response:
    """A step waits for an event; the headers are those its result will be published with."""
    who = caller(request)
    body = await json_body(request, settings)
    items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    await waits.wait(who.user_id, request.path_params["eventId"], items, body)
    return json({})


@api.route("POST /v2/notify/{eventId}", "Notify every waiter of an event (the body is the data)")
@api.route(
    "POST /v2/notify/{workflowRunId}/{eventId}",
    "Notify one run; kept for it if it does not wait yet",
)
async def notify(request: Request, *, waits: Waits, settings: Settings) -> Response:
    """The raw body is the event's data, handed to every waiter (of one run, with its id)."""
    who = caller(request)
    run_id = request.path_params.get("workflowRunId")
    if run_id is not None:
        await waits.check_run(who.user_id, run_id)  # before the body is read
    answers = await waits.notify(
        who.user_id, request.path_params["eventId"], await read_body(request, settings), run_id
    )
    return json(answers)


@api.route("GET /v2/waiters/{eventId}", "The waiters of an event")
async def waiters(request: Request, *, waits: Waits) -> Response:
    who = caller(request)
    return json(await waits.waiters(who.user_id, request.path_params["eventId"]))


@api.route(
    "GET,POST,PUT,PATCH,DELETE /v2/workflows/hooks/{userId}/{workflowRunId}/{eventId}",
    "A run's webhook URL (no token): the request is the waiting step's event",
    open_query=True,
    tokenless=True,
)
async def webhook(request: Request, *, waits: Waits, users: Users, settings: Settings) -> Response:
    """Anything sent here is the waiting run's event: the request, as the SDK rebuilds it."""
    user = request.path_params["userId"]
    if users.get(user) is None:
        raise NotFound(f"user {user!r} not found")
    run_id = request.path_params["workflowRunId"]
    # Anyone may call this URL: what can be checked is checked before a byte is read.
    await waits.check_run(user, run_id)
    body = await read_body(request, settings)
    header: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        header.setdefault(name, []).append(value)
    capture = {
        "method": request.method,
        "header": header,
        "body": _json.b64(body),
        "proto": request.url.scheme,
        "host": request.headers.get("host", request.url.netloc),
        "url": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    await waits.webhook(user, run_id, request.path_params["eventId"], capture)
    return json({})
