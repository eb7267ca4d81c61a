"""Attempts in flight per destination and per user: one endpoint that never answers does not
stop the others, and a cancel ends an attempt in flight (docs/behaviour.md#delivery)."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from qstash_emulator import Emulator
from qstash_emulator.delivery.lanes import Lanes, destination_of

from .helpers import Destination, auth, wait_until


class Hanging:
    """A server that accepts every connection, reads what comes and never answers (an
    endpoint paused at a breakpoint); ``open`` counts the connections not closed yet."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=2_048)
        self._listener.setblocking(False)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._open: set[socket.socket] = set()
        self.accepted = 0
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name="hanging", daemon=True)
        self._thread.start()

    @property
    def open(self) -> int:
        with self._lock:
            return len(self._open)

    def _serve(self) -> None:
        while not self._stopped:
            for key, _ in self._selector.select(0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    try:
                        conn, _ = sock.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    self._selector.register(conn, selectors.EVENT_READ)
                    with self._lock:
                        self._open.add(conn)
                        self.accepted += 1
                    continue
                try:
                    data = sock.recv(65_536)
                except BlockingIOError:
                    continue
                except ConnectionError:
                    data = b""
                if not data:
                    self._selector.unregister(sock)
                    sock.close()
                    with self._lock:
                        self._open.discard(sock)

    def stop(self) -> None:
        self._stopped = True
        self._thread.join(5)
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()
        self._listener.close()
        self._selector.close()


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    server = Hanging()
    yield server
    server.stop()


def _publish_many(emu: Emulator, url: str, count: int) -> None:
    headers = auth(emu)
    for start in range(0, count, 100):
        batch = [{"destination": f"{url}/{i}"} for i in range(start, min(count, start + 100))]
        r = httpx.post(f"{emu.url}/v2/batch", headers=headers, json=batch, timeout=30)
        assert r.status_code == 200, r.text


def _publish(emu: Emulator, token: str, url: str) -> None:
    r = httpx.post(f"{emu.url}/v2/publish/{url}", headers=auth(token))
    assert r.status_code == 200, r.text


def test_a_hanging_destination_leaves_the_others_delivered_and_a_cancel_frees_it(
    emulator: Emulator,
    destination: Destination,
    hanging: Hanging,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """1,100 messages to an endpoint that never answers (the payg timeout is 2 h) take its
    256 slots; another user's message and the same user's to a healthy URL are delivered at
    once; cancelling the 1,100 drops their connections and frees every slot."""
    # Internal: the engine's connection slots have no public surface.
    engine = emulator.runtime.engine
    try:
        _publish_many(emulator, hanging.url, 1_100)
        wait_until(lambda: hanging.open == 256, 20, "256 connections to the hanging endpoint")
        other = emulator.create_user()
        sent = time.monotonic()
        _publish(emulator, other.token, destination.url + "/other-user")
        _publish(emulator, emulator.token, destination.url + "/same-user")
        got = destination.wait(2, timeout=5)
        assert {r.path for r in got} == {"/other-user", "/same-user"}
        assert max(r.at for r in got) - sent < 2
        assert hanging.open == 256  # no more than its limit, whatever else is delivered

        r = httpx.delete(
            f"{emulator.url}/v2/messages",
            headers=auth(emulator),
            timeout=60,
        )
        assert r.json() == {"cancelled": 1_100}
        wait_until(lambda: hanging.open == 0, 10, "the dropped connections")
        wait_until(lambda: engine.in_flight == 0, 10, "no attempt in flight")
        assert engine._lanes.in_flight(destination_of(hanging.url), emulator.user.user_id) == (
            0,
            0,
        )
        # The messages waiting for room were cancelled without ever starting, nor did the
        # sweep of abandoned claims take one for abandoned while its cancel was stored.
        assert hanging.accepted == 256
        assert [r for r in caplog.records if "no running attempt" in r.getMessage()] == []
        assert _states(emulator, hanging.url + "/1099") == [
            "CREATED",
            "CANCEL_REQUESTED",
            "CANCELED",
        ]
        assert _states(emulator, hanging.url + "/0") == [
            "CREATED",
            "ACTIVE",
            "CANCEL_REQUESTED",
            "CANCELED",
        ]
    finally:
        emulator.reset()


def _states(emu: Emulator, url: str) -> list[str]:
    r = httpx.get(f"{emu.url}/v2/logs", headers=auth(emu), params={"url": url})
    return [row["state"] for row in reversed(r.json()["events"])]


def test_each_limit_has_a_line_in_claim_order() -> None:
    lanes = Lanes(per_destination=2, per_user=3)
    a, b = "http://a:80", "http://b:80"
    assert [lanes.admit(f"m{i}", a, "u") for i in range(3)] == [True, True, False]
    assert lanes.admit("m3", b, "u") is True  # another destination: room
    assert lanes.admit("m4", b, "u") is False  # the user's third slot is taken
    assert lanes.admit("m5", b, "v") is True  # another user: room
    assert (len(lanes), lanes.ids()) == (2, {"m2", "m4"})
    # m2 waits for a; m4, first in the user's line, is moved to b's line (b is full too).
    assert lanes.ready(10) == []
    lanes.release(b, "u")
    assert [w.message_id for w in lanes.ready(10)] == ["m4"]
    lanes.release(a, "u")
    assert [w.message_id for w in lanes.ready(10)] == ["m2"]
    assert lanes.in_flight(a, "u") == (2, 3)
    assert lanes.admit("m6", a, "u") is False
    lanes.drop(["m6"])  # cancelled while in line: skipped
    lanes.release(a, "u")
    assert (len(lanes), lanes.ready(10)) == (0, [])


def test_destinations_are_scheme_host_and_port() -> None:
    assert destination_of("http://Example.com/x?y") == "http://example.com:80"
    assert destination_of("https://example.com:8443/") == "https://example.com:8443"
    assert destination_of("http://127.0.0.1:9/a") != destination_of("http://127.0.0.1:10/a")


def test_the_limits_are_settings_of_at_least_one() -> None:
    from qstash_emulator.server.config import settings_from

    env = {"QSTASH_EMULATOR_IN_FLIGHT_PER_DESTINATION": "8"}
    settings = settings_from({"in_flight_per_user": 16}, env)
    assert (settings.in_flight_per_destination, settings.in_flight_per_user) == (8, 16)
    with pytest.raises(ValueError, match="--in-flight-per-user must be at least 1, not 0"):
        settings_from({"in_flight_per_user": 0}, {})
