"""Request bodies are never read past their route's limit: a ``Content-Length`` over it is
refused before a byte is read, a streamed body once it passes it, and what can be checked
(token, user, run) is checked first (docs/behaviour.md#request-bodies)."""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest

from qstash_emulator import DEFAULT_USERS

from .helpers import EmulatorProcess

TOKEN = DEFAULT_USERS[0].token
MESSAGE = 1 << 20  # --max-message-size 1MB
BATCH = 100 << 20
JSON = 1 << 20


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorProcess]:
    proc = EmulatorProcess("--quiet", "--max-message-size", "1MB")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def run_id(server: EmulatorProcess) -> str:
    """A workflow run that is going: its first step waits an hour to be delivered."""
    r = httpx.post(
        f"{server.url}/v2/trigger/http://127.0.0.1:9/wf",
        headers={**server.auth, "Upstash-Delay": "1h"},
        content=b"{}",
    )
    assert r.status_code == 200, r.text
    found: str = r.json()["workflowRunId"]
    return found


def exchange(port: int, head: str, chunks: Iterable[bytes] = ()) -> tuple[int, str, int]:
    """Send ``head`` and then ``chunks`` until the server answers; its status, its body and
    how many body bytes were sent by then."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is there: stop sending
            try:
                sock.sendall(chunk)
            except OSError:  # closed on us
                break
            sent += len(chunk)
        received = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in received or not _complete(received):
            assert time.monotonic() < deadline, f"no whole answer in 10 s: {received[:200]!r}"
            data = sock.recv(65536)
            if not data:
                break
            received += data
    status = int(received.split(b" ", 2)[1])
    return status, received.partition(b"\r\n\r\n")[2].decode(), sent


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: (\d+)", head)
    return length is not None and len(body) >= int(length.group(1))


def declared(path: str, length: int, token: str | None = TOKEN) -> str:
    creds = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{creds}"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )


def chunked(path: str, token: str | None = TOKEN) -> str:
    creds = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{creds}Transfer-Encoding: chunked\r\n\r\n"


def chunks(total: int, size: int = 256 << 10) -> Iterator[bytes]:
    piece = f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"
    for _ in range(total // size):
        yield piece
    yield b"0\r\n\r\n"


def too_large(size: str, limit: int, name: str = "this route's limit") -> str:
    return f'{{"error":"invalid body: {size} exceeds {name} of {limit} bytes"}}'


GIGABYTE = 1 << 30


@pytest.mark.parametrize(
    ("path", "status", "limit", "name"),
    [
        ("/v2/publish/http://127.0.0.1:9/x", 400, MESSAGE, "the maximum message size"),
        ("/v2/enqueue/q/http://127.0.0.1:9/x", 400, MESSAGE, "the maximum message size"),
        ("/v2/schedules/http://127.0.0.1:9/x", 400, MESSAGE, "the maximum message size"),
        ("/v2/batch", 413, BATCH, None),
        ("/v2/queues", 413, JSON, None),
        ("/v2/notify/evt", 413, MESSAGE, None),
    ],
)
def test_a_content_length_over_the_limit_is_refused_before_the_body_is_read(
    server: EmulatorProcess, path: str, status: int, limit: int, name: str | None
) -> None:
    # No byte of the body is ever sent: the answer cannot wait for it.
    answer = exchange(server.port, declared(path, GIGABYTE))
    expected = too_large(f"{GIGABYTE} bytes", limit, name or "this route's limit")
    assert answer[:2] == (status, expected)


def test_the_webhook_route_checks_user_and_run_before_reading(
    server: EmulatorProcess, run_id: str
) -> None:
    nobody = exchange(server.port, declared("/v2/workflows/hooks/nobody/wfr_x/evt", GIGABYTE))
    assert nobody[:2] == (404, '{"error":"user \'nobody\' not found"}')
    no_run = exchange(server.port, declared("/v2/workflows/hooks/defaultUser/wfr_x/e", GIGABYTE))
    assert no_run[:2] == (404, '{"error":"workflow run \'wfr_x\' not found or already ended"}')
    hook = f"/v2/workflows/hooks/defaultUser/{run_id}/evt"
    going = exchange(server.port, declared(hook, GIGABYTE, token=None))
    assert going[:2] == (413, too_large(f"{GIGABYTE} bytes", MESSAGE))
    unknown = exchange(server.port, declared("/v2/publish/http://127.0.0.1:9/x", GIGABYTE, "no"))
    assert unknown[0] == 401


def _peak_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "status", "name"),
    [
        ("/v2/publish/http://127.0.0.1:9/x", 400, "the maximum message size"),
        ("/v2/workflows/hooks/defaultUser/{run}/evt", 413, "this route's limit"),
    ],
)
def test_a_streamed_body_is_read_no_further_than_the_limit(
    server: EmulatorProcess, run_id: str, path: str, status: int, name: str
) -> None:
    pid = server.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from now
    before = _peak_kib(pid)
    body = 64 << 20
    answer = exchange(server.port, chunked(path.format(run=run_id)), chunks(body))
    assert answer[:2] == (status, too_large(f"more than {MESSAGE} bytes", MESSAGE, name))
    assert answer[2] < body  # the answer came before the whole body was sent
    grown = _peak_kib(pid) - before
    assert grown < 16 << 10, f"the server's peak RSS grew by {grown} KiB for a 64 MiB body"
    assert httpx.get(f"{server.url}/v2/keys", headers=server.auth).status_code == 200
