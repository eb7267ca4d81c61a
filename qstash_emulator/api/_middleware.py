"""The API side of programmed faults (``_faults``): a request that meets one never reaches a
handler. ``/_emulator/`` (the inspection and control API) is never faulted."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .._errors import EmulatorError
from .._faults import Faults
from ._common import caller

__all__ = ["FaultMiddleware"]


class FaultMiddleware:
    """ASGI middleware that applies the programmed faults before any handler runs."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.faults or path.startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        fault = self.faults.take(_user(scope), scope["method"], path)
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


def _user(scope: Scope) -> str | None:
    try:
        return caller(Request(scope)).user_id
    except EmulatorError:
        return None
