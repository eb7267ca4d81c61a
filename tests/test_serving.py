"""``ThreadedServer``: uvicorn on a background thread, started and stopped from synchronous code;
``Server``: told when it is ready, and a stop bounded by its drain."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn

from qstash_emulator.server.serving import Server, ThreadedServer, listen


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serves_until_stopped_and_runs_coroutines_on_its_loop() -> None:
    server = ThreadedServer(_hello, name="hello")
    assert server.port > 0 and server.loop is None  # the port is known before the start
    with server:
        assert httpx.get(f"http://127.0.0.1:{server.port}/").text == "hello"
        loop = server.call(_running_loop())
        assert loop is server.loop
    assert not _accepts(server.port)
    with pytest.raises(RuntimeError, match="hello is not running"):
        server.call(_running_loop())


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_a_call_that_times_out_is_cancelled() -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with ThreadedServer(_hello) as server:
        with pytest.raises(TimeoutError):
            server.call(forever(), timeout=0.05)
        assert cancelled.wait(5)


def test_a_server_that_cannot_start_is_an_error_not_a_hang() -> None:
    async def refuses(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no"})

    server = ThreadedServer(refuses, name="refuser", lifespan="on", log_level="critical")
    with pytest.raises(
        RuntimeError, match="refuser did not start on port .*: uvicorn exited with status 3"
    ):
        server.start()
    server.stop()


def test_stopping_a_server_never_started_frees_its_port() -> None:
    server = ThreadedServer(_hello)
    server.stop()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", server.port))


def test_a_stop_waits_for_no_tick_and_closes_idle_connections_at_once() -> None:
    """uvicorn looks at its exit flag every 0.1 s and then sleeps 0.1 s more: each stop took
    0.2 s, and the tests stop hundreds of servers. A stop wakes it; an idle keep-alive
    connection does not hold it up."""
    took = []
    for _ in range(5):
        server = ThreadedServer(_hello).start()
        with httpx.Client() as client:
            assert client.get(f"http://127.0.0.1:{server.port}/").text == "hello"
            started = time.monotonic()
            server.stop()
            took.append(time.monotonic() - started)
        assert not _accepts(server.port)
    assert sorted(took)[2] < 0.1, took


def test_a_stop_lets_a_response_under_way_finish() -> None:
    entered = threading.Event()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        entered.set()
        await asyncio.sleep(0.3)
        await _hello(scope, receive, send)

    server = ThreadedServer(slow).start()
    answers: list[str] = []
    caller = threading.Thread(
        target=lambda: answers.append(httpx.get(f"http://127.0.0.1:{server.port}/").text)
    )
    caller.start()
    assert entered.wait(5)
    server.stop()
    caller.join(5)
    assert answers == ["hello"]


def _serve_then_stop(server: Server, sock: socket.socket) -> None:
    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        for _ in range(1_000):  # bounded: 10 s
            if server.started:
                break
            await asyncio.sleep(0.01)
        server.should_exit = True
        await task

    asyncio.run(run())


@pytest.mark.parametrize("finishes", [True, False], ids=["drained", "bound passed"])
def test_ready_once_listening_and_a_drain_within_its_bound(finishes: bool) -> None:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    ready: list[bool] = []
    drains: list[float] = []

    async def drain() -> None:
        started = time.monotonic()
        await asyncio.sleep(0.05 if finishes else 3600)
        drains.append(time.monotonic() - started)

    config = uvicorn.Config(_hello, lifespan="off", log_level="warning")
    server = Server(config, on_ready=lambda: ready.append(_accepts(port)), drain=drain, drain_s=0.5)
    started = time.monotonic()
    _serve_then_stop(server, sock)
    assert ready == [True]  # called once, with the port already accepting connections
    assert server.drained is finishes
    assert len(drains) == (1 if finishes else 0)  # the unfinished one was cancelled
    assert time.monotonic() - started < 5
