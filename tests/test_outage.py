"""A Redis outage under load: the store is killed and restarted while messages flow.

A real ``redis-server`` (every write in its append-only file before it is answered) is
killed with SIGKILL while a dev server publishes and delivers through it, and restarted on
the same port a few seconds later. During the outage the API answers 503 with
``Retry-After``; afterwards every message that was answered 2xx is delivered at least once
and none stays in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from .helpers import Destination, EmulatorProcess, RedisServer, Reply, api, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.redis]

RUN_S = 9.0  # how long messages are published
KILL_AT_S = 2.5  # when Redis is killed
OUTAGE_S = 3.0  # how long it stays down
SLOW_S = 0.6  # every fourth delivery takes this long: in flight when Redis goes


@dataclass
class Load:
    accepted: list[str] = field(default_factory=list)
    refused: list[httpx.Response] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # any other answer: must stay empty


def _slow() -> Reply:
    time.sleep(SLOW_S)
    return 200, {}, b"slow ok"


@pytest.fixture
def durable_redis() -> Iterator[RedisServer]:
    server = RedisServer(durable=True)
    yield server
    server.stop()


def _publish(emu: EmulatorProcess, destination: Destination, load: Load, stop: float) -> None:
    with api(emu, timeout=10) as http:
        i = 0
        while time.monotonic() < stop:
            path = f"/outage/{i}"
            if i % 4 == 0:
                destination.script(path, _slow)
            try:
                r = http.post(f"/v2/publish/{destination.url}{path}", content=f"m{i}")
            except httpx.HTTPError as exc:
                load.other.append(f"{type(exc).__name__}: {exc}")
            else:
                if r.status_code == 200:
                    load.accepted.append(r.json()["messageId"])
                elif r.status_code == 503:
                    load.refused.append(r)
                else:
                    load.other.append(f"{r.status_code} {r.text}")
            i += 1
            time.sleep(0.02)


def test_a_redis_outage_loses_and_strands_nothing(
    durable_redis: RedisServer, destination: Destination
) -> None:
    emu = EmulatorProcess("--redis-url", durable_redis.url, "--quiet")
    load = Load()
    try:
        start = time.monotonic()
        publisher = threading.Thread(
            target=_publish, args=(emu, destination, load, start + RUN_S), daemon=True
        )
        publisher.start()
        time.sleep(KILL_AT_S)
        durable_redis.kill()
        time.sleep(OUTAGE_S)
        durable_redis.start()
        publisher.join(RUN_S + 30)
        assert not publisher.is_alive()

        assert load.other == []
        assert load.refused, "no publish fell into the outage"
        for r in load.refused:
            assert r.json()["error"].startswith("store unavailable: "), r.text
            assert r.headers["retry-after"] == "1"
        accepted = set(load.accepted)

        def delivered() -> set[str]:
            return {r.headers["upstash-message-id"] for r in destination.received} & accepted

        wait_until(
            lambda: delivered() == accepted,
            timeout=30,
            what=f"every accepted message delivered ({len(accepted)})",
        )

        def waiting() -> list[dict[str, object]]:
            r = httpx.get(f"{emu.url}/_emulator/messages", headers=emu.auth, timeout=10)
            assert r.status_code == 200, r.text
            return list(r.json()["messages"])

        wait_until(lambda: waiting() == [], timeout=30, what="nothing left in flight or due")
        lost = accepted - delivered()
        print(
            f"accepted {len(accepted)}, refused during the outage {len(load.refused)}, "
            f"lost {len(lost)}, stuck 0, deliveries {len(destination.received)}"
        )
    finally:
        out = emu.stop()
    assert "Traceback" not in out, out
    # However many calls met the outage: logged once when it began, once when it ended.
    assert out.count("store unavailable") == 1, out
    assert out.count("store answers again") == 1, out


def test_an_outage_of_an_idle_server_is_logged_once_each_way(
    durable_redis: RedisServer,
) -> None:
    emu = EmulatorProcess("--redis-url", durable_redis.url, "--quiet")
    assert emu.proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(emu.proc.stdout or ()), daemon=True)
    reader.start()
    try:
        durable_redis.kill()
        wait_until(lambda: any("store unavailable" in x for x in lines), 10, "the outage logged")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # the outage lasts: nothing more is logged
            r = httpx.get(f"{emu.url}/v2/queues", headers=emu.auth, timeout=10)
            assert r.status_code == 503
            time.sleep(0.1)
        durable_redis.start()
        wait_until(lambda: any("answers again" in x for x in lines), 10, "the recovery logged")
        r = httpx.get(f"{emu.url}/v2/queues", headers=emu.auth, timeout=10)
        assert r.status_code == 200
    finally:
        emu.proc.terminate()
        emu.proc.wait(10)
        reader.join(5)
        emu.proc.stdout.close()
    out = "".join(lines)
    assert out.count("store unavailable") == 1, out
    assert out.count("store answers again") == 1, out
