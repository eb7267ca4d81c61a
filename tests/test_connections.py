"""The server's connections are bounded: how many are open at once, how long a request's
headers may take, how big they may be; running out is logged once (docs/behaviour.md#connections).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from qstash_emulator import Emulator
from qstash_emulator.server.connections import MAX_HEADER_BYTES, limited_protocol
from qstash_emulator.server.serving import ThreadedServer

from .helpers import auth

CAP = 20
HEADER_TIMEOUT = 1.0


@pytest.fixture
def server() -> Iterator[Emulator]:
    with Emulator(max_connections=CAP, header_timeout_s=HEADER_TIMEOUT) as emu:
        yield emu


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (it never sends a byte)."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer (status line, headers and a Content-Length body) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def keys(emu: Emulator) -> int:
    headers = auth(emu)
    return httpx.get(f"{emu.url}/v2/keys", headers=headers, timeout=5).status_code


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    server: Emulator,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as idle:
        started = time.monotonic()
        assert closed_by_server(idle, HEADER_TIMEOUT + 4)
        assert HEADER_TIMEOUT - 0.2 <= time.monotonic() - started


def test_headers_sent_a_byte_at_a_time_are_cut_off_at_the_header_timeout(
    server: Emulator,
) -> None:
    request = f"GET /v2/keys HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.token}"
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        started = time.monotonic()
        closed = False
        for byte in request.encode():  # ~100 bytes, one every 0.05 s: 5 s if never cut off
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            if closed_by_server(slow, 0.05):
                closed = True
                break
        assert closed, "the server waited for the whole trickle"
        assert time.monotonic() - started < HEADER_TIMEOUT + 1.5


def test_the_header_timeout_starts_over_after_each_answer(server: Emulator) -> None:
    # A kept-alive connection has the header timeout after its last answer, not its first.
    request = f"GET /v2/keys HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.token}"
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.settimeout(5)
        for _ in range(3):
            conn.sendall(request.encode() + b"\r\n\r\n")
            assert read_answer(conn).startswith(b"HTTP/1.1 200 ")
            answered = time.monotonic()
            assert not closed_by_server(conn, HEADER_TIMEOUT * 0.6)
        # 1.8 timeouts after the first answer it is open; then closed a timeout after the last.
        assert closed_by_server(conn, HEADER_TIMEOUT + 4)
        assert HEADER_TIMEOUT - 0.2 <= time.monotonic() - answered


def test_headers_past_their_limit_close_the_connection(server: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as big:
        big.sendall(b"GET /v2/keys HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        sent = 0
        try:
            while sent <= MAX_HEADER_BYTES + 2 * len(filler):
                big.sendall(filler)
                sent += len(filler)
        except OSError:
            pass
        assert closed_by_server(big, HEADER_TIMEOUT / 2)


def test_idle_sockets_past_the_limit_are_closed_and_logged_once(
    server: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="qstash_emulator")
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3 * CAP)]
    try:
        # Those past the limit are closed at once, well before the header timeout.
        closed = sum(closed_by_server(sock, 0.3) for sock in idle[CAP:])
        assert closed == 2 * CAP
        # The idle ones are closed after the header timeout; then the API answers again.
        deadline = time.monotonic() + HEADER_TIMEOUT + 5
        while True:
            try:
                if keys(server) == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API never answered again"
            time.sleep(0.1)
        assert all(closed_by_server(sock, 0.1) for sock in idle[:CAP])
    finally:
        for sock in idle:
            sock.close()
    limit = [r for r in caplog.records if "the limit (--max-connections)" in r.getMessage()]
    assert [r.getMessage() for r in limit] == [
        f"{CAP} connections are open, the limit (--max-connections): new ones are closed as "
        "they arrive until some end"
    ]


def test_accepts_failing_for_want_of_descriptors_are_logged_once(
    server: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # What asyncio logs for each failed accept (many a second while the process has no file
    # descriptor left), with its traceback.
    caplog.set_level(logging.ERROR, logger="asyncio")
    for _ in range(1_000):
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            logging.getLogger("asyncio").error(
                "socket.accept() out of system resource\nsocket: %s", "<sock>", exc_info=True
            )
    assert [(r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "cannot accept connections: the process is out of file descriptors (logged once "
            "until a connection is accepted again)",
            None,
        )
    ]
    assert keys(server) == 200  # a connection accepted: a later run is logged again
    logging.getLogger("asyncio").error("socket.accept() out of system resource")
    assert len(caplog.records) == 2


def test_the_bounds_hold_with_h11_too() -> None:
    # uvicorn speaks h11 where httptools (the [fast] extra) is not installed.
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from uvicorn.protocols.http.h11_impl import H11Protocol

    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    protocol = limited_protocol(2, HEADER_TIMEOUT, base=H11Protocol)
    with ThreadedServer(app, http=protocol) as server:
        url = f"http://127.0.0.1:{server.port}/"
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        try:
            assert closed_by_server(idle[2], 0.5)  # past the limit of 2
            started = time.monotonic()
            assert closed_by_server(idle[0], HEADER_TIMEOUT + 4)
            assert time.monotonic() - started >= HEADER_TIMEOUT - 0.3
        finally:
            for sock in idle:
                sock.close()
        for _ in range(3):  # a connection answered, then idle again: the timer starts over
            assert httpx.get(url, timeout=5).text == "ok"


def test_start_up_imports_no_websocket_library() -> None:
    """QStash has no WebSocket route: uvicorn's default would import wsproto (and h11) at
    every start to serve none, a tenth of the start-up (bench scenario 4)."""
    import subprocess
    import sys

    script = """
import sys
from qstash_emulator import Emulator
with Emulator():
    print(sorted(m for m in ("wsproto", "websockets", "h11") if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_a_websocket_upgrade_is_answered_as_plain_http(server: Emulator) -> None:
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    resp = httpx.get(f"{server.url}/v2/keys", headers={**headers, **auth(server)}, timeout=5)
    assert resp.status_code == 200
    assert set(resp.json()) == {"current", "next"}
