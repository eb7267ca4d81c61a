"""ASGI middleware of the API: programmed faults (``services.faults``), where a request that meets
one never reaches a handler (``/_emulator/``, the inspection and control API, is never
faulted), and answers that close their connection."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import EmulatorError
from ..services.faults import Faults
from ..services.users import Users
from ._common import authenticate

__all__ = ["CloseConnections", "FaultMiddleware"]


class FaultMiddleware:
    """ASGI middleware that applies the programmed faults before any handler runs."""

    def __init__(self, app: ASGIApp, faults: Faults, users: Users) -> None:
        self.app = app
        self.faults = faults
        self.users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.faults or path.startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        fault = self.faults.take(_user(scope, self.users), scope["method"], path)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.kind == "drop":
            # Headers promise a body that never comes; the server closes the connection.
            promise = [(b"content-length", b"1")]
            await send({"type": "http.response.start", "status": 200, "headers": promise})
            return
        status, headers, body = fault.response()
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw.append((b"content-type", b"application/json"))
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


class CloseConnections:
    """ASGI middleware that ends every HTTP answer with ``Connection: close``: the client
    closes its socket once it has read the answer, instead of keeping it idle in its pool."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)


def _user(scope: Scope, users: Users) -> str | None:
    try:
        return authenticate(Request(scope), False, users).user_id
    except EmulatorError:
        return None
