"""Apps mounted in process run off the caller's event loop: ASGI on a loop of their own, WSGI
in worker threads; an app that raises answers 500."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from qstash_emulator.delivery.mounted import AppThreads, MountedApp, is_wsgi


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("201 Created", [("X-Thread", threading.current_thread().name)])
    return [b"got " + body]


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    event = await receive()
    if event["body"] == b"boom":
        raise RuntimeError("boom")
    loop_thread = threading.current_thread().name.encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"x-thread", loop_thread)]}
    )
    await send({"type": "http.response.body", "body": event["body"]})


def test_the_interface_is_detected() -> None:
    assert is_wsgi(wsgi_app) is True
    assert is_wsgi(asgi_app) is False

    class Asgi:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    assert is_wsgi(Asgi()) is False


def test_apps_run_on_threads_of_their_own() -> None:
    threads = AppThreads()

    async def deliver() -> list[tuple[int, str | None, bytes]]:
        out = []
        for app, wsgi, body in ((wsgi_app, True, b"a"), (asgi_app, False, b"b")):
            mounted = MountedApp(app, wsgi, threads)
            answer = await mounted.send("POST", "https://x.test/p", {}, body, 5)
            out.append((answer.status, answer.header("x-thread"), answer.body))
        failed = await MountedApp(asgi_app, False, threads).send(
            "POST", "https://x.test/p", {}, b"boom", 5
        )
        out.append((failed.status, None, failed.body))
        return out

    try:
        (wsgi, asgi, failed) = asyncio.run(deliver())
    finally:
        threads.close()
    assert wsgi[0] == 201 and wsgi[2] == b"got a"
    assert wsgi[1] is not None and wsgi[1].startswith("qstash-emulator-wsgi")
    assert asgi == (200, "qstash-emulator-apps", b"b")
    assert failed == (500, None, b"RuntimeError('boom')")
