"""Destinations, callbacks and failure callbacks that misbehave: every case ends as the rules say.

A refused connection, a reset before or in the middle of a response, silence past the
timeout, a 5xx, a body that trickles in, a response that is not HTTP, redirects (followed,
and a loop), and a name that never resolves. Each raw misbehaviour is a real TCP listener on
127.0.0.1; ``.invalid`` names are refused by the resolver as RFC 6761 asks, so no lookup
leaves the machine.

The rules: docs/behaviour.md#retries.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from qstash_emulator import Emulator

from .helpers import Destination, auth, free_port, publish, wait_until

Behaviour = Callable[[socket.socket, threading.Event], None]


class RawServer:
    """A TCP listener on 127.0.0.1 that reads each request, then misbehaves one way."""

    def __init__(self, behave: Behaviour) -> None:
        self.behave = behave
        self.hits = 0
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.hits += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            _read_request(conn)
            self.behave(conn, self._stop)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)
        self._sock.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def _rst(conn: socket.socket) -> None:
    """Close with a TCP reset instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def reset_before_answer(conn: socket.socket, stop: threading.Event) -> None:
    _rst(conn)


def reset_mid_response(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
    time.sleep(0.05)
    _rst(conn)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait(8)


def slow_body(conn: socket.socket, stop: threading.Event) -> None:
    """Headers at once, then a byte every 0.25 s: 5 s for the whole body."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
    for _ in range(20):
        if stop.wait(0.25):
            return
        conn.sendall(b"x")


def slow_but_in_time(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    for _ in range(5):
        time.sleep(0.05)
        conn.sendall(b"y")


def not_http(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"SPEAKING GOPHER NOW\r\n\r\n")


@pytest.fixture
def raw() -> Iterator[Callable[[Behaviour], RawServer]]:
    servers: list[RawServer] = []

    def start(behave: Behaviour) -> RawServer:
        servers.append(RawServer(behave))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def no_invalid_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``.invalid`` never resolves (RFC 6761); answer so locally instead of asking DNS."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.rstrip(".").endswith(".invalid"):
            asked.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def settle(emulator: Emulator, message_id: str, timeout: float = 15) -> list[dict[str, Any]]:
    """The message's log rows, oldest first, once it is DELIVERED or FAILED."""
    rows: list[dict[str, Any]] = []

    def final() -> bool:
        r = httpx.get(
            f"{emulator.url}/v2/logs",
            params={"messageId": message_id, "order": "earliestFirst"},
            headers=auth(emulator),
        )
        rows[:] = r.json()["logs"]
        return any(row["state"] in ("DELIVERED", "FAILED") for row in rows)

    wait_until(final, timeout, f"{message_id} to be delivered or failed")
    return rows


def dlq(emulator: Emulator) -> list[dict[str, Any]]:
    r = httpx.get(f"{emulator.url}/v2/dlq", headers=auth(emulator))
    return list(r.json()["messages"])


FAILED_AFTER_ONE_RETRY = ["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "FAILED"]
RETRY_ONCE_NOW = {"Upstash-Retries": "1", "Upstash-Retry-Delay": "0"}


@pytest.mark.parametrize(
    ("behaviour", "headers", "error"),
    [
        (
            reset_before_answer,
            {},
            r"^(connection reset by 127\.0\.0\.1:\d+"
            r"|127\.0\.0\.1:\d+ closed the connection without answering)$",
        ),
        (
            reset_mid_response,
            {},
            r"^127\.0\.0\.1:\d+ broke off its answer before the end of the body$",
        ),
        (silent, {"Upstash-Timeout": "1s"}, "^timeout after 1s$"),
        (slow_body, {"Upstash-Timeout": "1s"}, "^timeout after 1s$"),
        (
            not_http,
            {},
            r"^127\.0\.0\.1:\d+ answered something that is not HTTP \(Bad status line\)$",
        ),
    ],
    ids=["reset-before-answer", "reset-mid-response", "silent", "slow-body", "not-http"],
)
def test_broken_connection_is_retried_then_dead_lettered(
    emulator: Emulator,
    raw: Callable[[Behaviour], RawServer],
    behaviour: Behaviour,
    headers: dict[str, str],
    error: str,
) -> None:
    server = raw(behaviour)
    message_id = publish(emulator, server.url + "/hook", **RETRY_ONCE_NOW, **headers)
    rows = settle(emulator, message_id)
    assert [r["state"] for r in rows] == FAILED_AFTER_ONE_RETRY
    errors = [r for r in rows if r["state"] == "ERROR"]
    assert all(re.search(error, r["error"]) and r["responseStatus"] == 0 for r in errors), errors
    (dead,) = dlq(emulator)
    assert dead["messageId"] == message_id and dead["responseStatus"] == 0
    assert re.search(error, dead["error"])
    assert server.hits == 2


def test_connection_refused(emulator: Emulator) -> None:
    url = refused_url()
    message_id = publish(emulator, url + "/hook", **RETRY_ONCE_NOW)
    rows = settle(emulator, message_id)
    assert [r["state"] for r in rows] == FAILED_AFTER_ONE_RETRY
    # Said in words, the same in the log, the dead letter and the attempt (not the HTTP
    # client's "ClientConnectorError: Cannot connect to host ... ssl:default [...]").
    said = f"connection refused by {url.removeprefix('http://')}"
    assert [r["error"] for r in rows if r["state"] == "ERROR"] == [said, said]
    assert rows[-1]["error"] == f"{said}; no retries left (1 of 1 used)"
    (dead,) = dlq(emulator)
    assert (dead["messageId"], dead["error"], dead["responseStatus"]) == (message_id, said, 0)
    attempts = httpx.get(
        f"{emulator.url}/_emulator/attempts",
        params={"messageId": message_id},
        headers=auth(emulator),
    ).json()["attempts"]
    assert [a["error"] for a in attempts] == [said, said]


def test_unresolvable_host(emulator: Emulator, no_invalid_lookups: list[str]) -> None:
    message_id = publish(emulator, "http://does-not-exist.invalid/hook", **RETRY_ONCE_NOW)
    rows = settle(emulator, message_id)
    assert [r["state"] for r in rows] == FAILED_AFTER_ONE_RETRY
    assert (
        rows[-2]["error"] == "does-not-exist.invalid does not resolve (Name or service not known)"
    )
    assert [d["messageId"] for d in dlq(emulator)] == [message_id]
    assert no_invalid_lookups, "the lookup went to the real resolver"


def test_5xx_keeps_the_last_response_in_the_dlq(
    emulator: Emulator, destination: Destination
) -> None:
    destination.script("/busy", *[(503, {"Retry-After": "0"}, b"try later")] * 2)
    message_id = publish(emulator, destination.url + "/busy", **RETRY_ONCE_NOW)
    rows = settle(emulator, message_id)
    assert [r["state"] for r in rows] == FAILED_AFTER_ONE_RETRY
    assert {r["responseStatus"] for r in rows if r["state"] == "ERROR"} == {503}
    (dead,) = dlq(emulator)
    assert (dead["responseStatus"], dead["responseBody"]) == (503, "try later")


def test_slow_body_within_the_timeout_is_delivered(
    emulator: Emulator, raw: Callable[[Behaviour], RawServer]
) -> None:
    server = raw(slow_but_in_time)
    message_id = publish(emulator, server.url + "/slow", **{"Upstash-Timeout": "5s"})
    rows = settle(emulator, message_id)
    assert [r["state"] for r in rows] == ["CREATED", "ACTIVE", "DELIVERED"]
    assert dlq(emulator) == []


def test_redirects_are_followed_and_the_signature_names_the_published_url(
    emulator: Emulator, destination: Destination
) -> None:
    destination.script("/r1", (307, {"Location": "/r2"}, b""))
    destination.script("/r2", (308, {"Location": destination.url + "/final"}, b""))
    message_id = publish(emulator, destination.url + "/r1")
    rows = settle(emulator, message_id)
    assert [r["state"] for r in rows] == ["CREATED", "ACTIVE", "DELIVERED"]
    final = destination.wait(1, "/final")[0]
    assert (final.method, final.body) == ("POST", b"payload")
    claims = jwt.decode(
        final.headers["upstash-signature"],
        emulator.current_signing_key,
        algorithms=["HS256"],
        options={"verify_nbf": False},
    )
    assert claims["sub"] == destination.url + "/r1"


def test_redirect_loop_fails_the_attempt(emulator: Emulator, destination: Destination) -> None:
    destination.script("/loop", *[(302, {"Location": "/loop"}, b"")] * 30)
    message_id = publish(emulator, destination.url + "/loop", **{"Upstash-Retries": "0"})
    rows = settle(emulator, message_id)
    assert [r["state"] for r in rows] == ["CREATED", "ACTIVE", "ERROR", "FAILED"]
    assert "TooManyRedirects" in rows[2]["error"]
    assert [d["messageId"] for d in dlq(emulator)] == [message_id]


# Callbacks and failure callbacks -----------------------------------------------------------


def _callbacks(emulator: Emulator, source: str, kind: str) -> set[str]:
    return {
        a.message_id
        for a in list(emulator.attempts)
        if a.kind == kind and a.source_message_id == source
    }


@pytest.mark.parametrize("where", ["refused", "reset-mid-response", "invalid-host", "silent"])
def test_a_failing_callback_fails_alone_and_is_not_a_dead_letter(
    emulator: Emulator,
    destination: Destination,
    raw: Callable[[Behaviour], RawServer],
    no_invalid_lookups: list[str],
    where: str,
) -> None:
    url = {
        "refused": lambda: refused_url(),
        "reset-mid-response": lambda: raw(reset_mid_response).url,
        "invalid-host": lambda: "http://callback.invalid",
        "silent": lambda: raw(silent).url,
    }[where]()
    message_id = publish(
        emulator,
        destination.url + "/ok",
        **{
            "Upstash-Callback": url + "/cb",
            "Upstash-Callback-Retries": "1",
            "Upstash-Callback-Timeout": "1s",
            "Upstash-Retry-Delay": "0",
        },
    )
    assert [r["state"] for r in settle(emulator, message_id)] == [
        "CREATED",
        "ACTIVE",
        "DELIVERED",
    ]
    wait_until(lambda: _callbacks(emulator, message_id, "callback"), what="the callback")
    (callback_id,) = _callbacks(emulator, message_id, "callback")
    rows = settle(emulator, callback_id)
    assert [r["state"] for r in rows] == FAILED_AFTER_ONE_RETRY
    assert rows[0]["url"] == url + "/cb"
    assert dlq(emulator) == []


@pytest.mark.parametrize("where", ["refused", "reset-before-answer", "invalid-host", "not-http"])
def test_a_failing_failure_callback_leaves_the_dead_letter_alone(
    emulator: Emulator,
    raw: Callable[[Behaviour], RawServer],
    no_invalid_lookups: list[str],
    where: str,
) -> None:
    url = {
        "refused": lambda: refused_url(),
        "reset-before-answer": lambda: raw(reset_before_answer).url,
        "invalid-host": lambda: "http://failure.invalid",
        "not-http": lambda: raw(not_http).url,
    }[where]()
    message_id = publish(
        emulator,
        refused_url() + "/down",
        **{
            "Upstash-Retries": "0",
            "Upstash-Failure-Callback": url + "/failed",
            "Upstash-Failure-Callback-Retries": "1",
            "Upstash-Retry-Delay": "0",
        },
    )
    assert [r["state"] for r in settle(emulator, message_id)] == [
        "CREATED",
        "ACTIVE",
        "ERROR",
        "FAILED",
    ]
    wait_until(
        lambda: _callbacks(emulator, message_id, "failure_callback"), what="the failure callback"
    )
    (failure_id,) = _callbacks(emulator, message_id, "failure_callback")
    assert [r["state"] for r in settle(emulator, failure_id)] == FAILED_AFTER_ONE_RETRY
    assert [d["messageId"] for d in dlq(emulator)] == [message_id]


def test_a_large_response_body_is_read_whole(emulator: Emulator, destination: Destination) -> None:
    """Bodies arrive in chunks; the DLQ keeps the whole last response, not its first chunk."""
    big = b"0123456789abcdef" * 20_000
    destination.script("/big", (500, {}, big))
    message_id = publish(emulator, destination.url + "/big", **{"Upstash-Retries": "0"})
    settle(emulator, message_id)
    (dead,) = dlq(emulator)
    assert dead["responseBody"] == big.decode()


def endless_body(conn: socket.socket, stop: threading.Event) -> None:
    """A 200 whose chunked body never ends: 64 KB chunks until the emulator hangs up."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"z" * 65536)
    while not stop.is_set():
        conn.sendall(chunk)


def body_past_the_cap(conn: socket.socket, stop: threading.Event) -> None:
    """A 500 with a 12 MB body, over the 10 MB kept of a response, that does end."""
    size = 12 << 20
    conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % size)
    for at in range(0, size, 1 << 20):
        conn.sendall(bytes([ord("a") + at // (1 << 20)]) * (1 << 20))


def test_an_endless_response_body_fails_at_the_timeout(
    emulator: Emulator, raw: Callable[[Behaviour], RawServer]
) -> None:
    """Delivered means the whole response arrived: 10 MB of a body that never ends is not it."""
    server = raw(endless_body)
    message_id = publish(
        emulator, server.url + "/hook", **RETRY_ONCE_NOW, **{"Upstash-Timeout": "1s"}
    )
    rows = settle(emulator, message_id, timeout=30)
    assert [r["state"] for r in rows] == FAILED_AFTER_ONE_RETRY
    errors = [r for r in rows if r["state"] == "ERROR"]
    assert [r["error"] for r in errors] == ["timeout after 1s"] * 2
    assert server.hits == 2


def test_a_response_past_the_cap_is_read_to_its_end_and_its_start_kept(
    emulator: Emulator, raw: Callable[[Behaviour], RawServer]
) -> None:
    server = raw(body_past_the_cap)
    message_id = publish(emulator, server.url + "/hook", **{"Upstash-Retries": "0"})
    assert [r["state"] for r in settle(emulator, message_id)][-1] == "FAILED"
    (dead,) = dlq(emulator)
    assert dead["responseStatus"] == 500
    body = dead["responseBody"]
    assert len(body) == 10 << 20 and body == "".join(c * (1 << 20) for c in "abcdefghij")
