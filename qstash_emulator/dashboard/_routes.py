"""The dashboard's few routes of its own: the page, its files, the user list and live rows.

Everything else the page shows or does goes through the emulator's API (``/v2/...`` and
``/_emulator/...``) with the chosen user's token, like any other client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from .. import _json
from ..api._common import authenticate, json
from ..server.hosts import is_loopback
from ..server.runtime import Runtime
from ..services.users import Users
from ..store.core import Store
from ._guard import Guard
from ._live import LiveRows

__all__ = ["routes"]

STATIC = Path(__file__).parent / "static"


class Dashboard:
    """The endpoints: the users for the picker (only while ``bind`` is loopback), the
    caller's identity, and one live-row hub on the store."""

    def __init__(self, bind: str, users: Users, store: Store) -> None:
        self.bind = bind
        self.users = users
        self.live = LiveRows(store)

    async def index(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            error = {"error": f"method {scope['method']} not allowed on /"}
            response: Response = Response(_json.dumps(error), 405, media_type="application/json")
        else:
            response = FileResponse(STATIC / "index.html", media_type="text/html")
        await response(scope, receive, send)

    async def list_users(self, request: Request) -> Response:
        """The users and their tokens, for the picker; only while bound to loopback."""
        bind = self.bind
        if not is_loopback(bind):
            # An answer, not an error: the page then asks for a token.
            message = (
                f"The emulator listens on {bind}, beyond this machine, so the dashboard does "
                "not list users and their tokens: enter a token."
            )
            return json({"users": None, "message": message})
        users = [{"userId": u.user_id, "token": u.token} for u in self.users.all()]
        return json({"users": users})

    async def me(self, request: Request) -> Response:
        """Who a token belongs to, for a page that was given a token instead of a user."""
        who = authenticate(request, False, self.users)
        return json({"userId": who.user_id, "readonly": who.readonly})

    async def stream(self, request: Request) -> Response:
        """Server-sent events: the caller's log rows as they are written."""
        who = authenticate(request, False, self.users)
        subscriber = self.live.subscribe(who.user_id)

        async def events() -> AsyncIterator[bytes]:
            async for batch in self.live.stream(subscriber):
                yield b"data: " + _json.dumps(batch) + b"\n\n"

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )


def routes(runtime: Runtime) -> list[BaseRoute]:
    """``/`` (the page) and ``/_dashboard/...``, behind the Host check."""
    bind, names = runtime.settings.host, runtime.settings.allowed_hosts
    dashboard = Dashboard(bind, runtime.users, runtime.store)
    inner = Router(
        routes=[
            Route("/api/users", dashboard.list_users, methods=["GET"]),
            Route("/api/me", dashboard.me, methods=["GET"]),
            Route("/api/stream", dashboard.stream, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC)),
        ]
    )
    return [
        Route("/", Guard(dashboard.index, bind, names)),
        Mount("/_dashboard", Guard(inner, bind, names)),
    ]
