"""The baselines' servers: the stack's ceiling for publish, the least work an emulator on this
stack can do per message (accept and forward), and a bare receiver for deliveries.

Each runs in its own process (``python bench/servers.py KIND --port N``) with the same uvicorn
configuration as ``qstash-emulator dev`` (loop and HTTP parser "auto", so uvloop and httptools
when installed, no access log), so a ratio compares the emulator's own work only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _publish(request: Request) -> Response:
    await request.body()
    return JSONResponse({"messageId": "msg_" + secrets.token_urlsafe(16)})


def ceiling_app() -> Starlette:
    """A bare Starlette endpoint on the publish route that answers a message id."""
    return Starlette(routes=[Route("/v2/publish/{destination:path}", _publish, methods=["POST"])])


class Forwarder:
    """Accepts a publish, answers an id, and sends the body on to its destination with aiohttp:
    no store, no signature, no log, no retries. What no emulator on this stack can beat."""

    def __init__(self) -> None:
        self.session: Any = None
        self.tasks: set[Any] = set()

    async def publish(self, request: Request) -> Response:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        body = await request.body()
        message_id = "msg_" + secrets.token_urlsafe(16)
        url = request.url.path.split("/v2/publish/", 1)[1]
        task = asyncio.ensure_future(self._send(url, body, message_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return JSONResponse({"messageId": message_id})

    async def _send(self, url: str, body: bytes, message_id: str) -> None:
        headers = {"Upstash-Message-Id": message_id, "Content-Type": "application/json"}
        async with self.session.post(url, data=body, headers=headers) as resp:
            await resp.read()

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/v2/publish/{destination:path}", self.publish, methods=["POST"])]
        )


class Receiver:
    """A bare ASGI destination: answers 200 and remembers when each message id first arrived.

    Arrival times are ``time.monotonic()``, which on Linux is CLOCK_MONOTONIC, one clock for
    every process on the machine, so the load generator can subtract its own send times.
    Control routes: ``GET /_stats``, ``GET /_arrivals``, ``POST /_reset``.
    """

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0
        self.arrivals: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = bool(message.get("more_body", False))
        path: str = scope["path"]
        if path.startswith("/_"):
            await self._control(scope["method"], path, send)
            return
        now = time.monotonic()
        self.count += 1
        self.last = now
        for name, value in scope["headers"]:
            if name == b"upstash-message-id":
                self.arrivals.setdefault(value.decode(), now)
                break
        await _reply(send, 200, b"ok", b"text/plain")

    async def _control(self, method: str, path: str, send: Send) -> None:
        if path == "/_stats":
            stats = {"count": self.count, "unique": len(self.arrivals), "last": self.last}
            await _reply(send, 200, json.dumps(stats).encode(), b"application/json")
        elif path == "/_arrivals":
            await _reply(send, 200, json.dumps(self.arrivals).encode(), b"application/json")
        elif path == "/_reset" and method == "POST":
            self.__init__()  # type: ignore[misc]
            await _reply(send, 200, b"{}", b"application/json")
        else:
            await _reply(send, 404, b"{}", b"application/json")


async def _reply(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["ceiling", "forwarder", "receiver"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    apps = {"ceiling": ceiling_app, "forwarder": lambda: Forwarder().app(), "receiver": Receiver}
    app: Any = apps[args.kind]()
    # The same settings as qstash_emulator.server.cli: loop/http "auto", no access log.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
