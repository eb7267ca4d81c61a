"""Two emulators, one Redis: the second refuses while the first runs, and takes over after.

Real ``qstash-emulator dev`` processes on a real ``redis-server``: a second one started on
the first one's Redis exits with an error naming it; once the first is killed, a new one
takes the store within the lease's lifetime and delivers what the first left, once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from qstash_emulator.store.lease import TTL_MS

from .helpers import Destination, EmulatorProcess, RedisServer, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


def test_one_emulator_per_redis_and_a_takeover_when_it_dies(
    own_redis: RedisServer, destination: Destination
) -> None:
    first = EmulatorProcess("--redis-url", own_redis.url, "--quiet")
    try:
        pending = [
            httpx.post(
                f"{first.url}/v2/publish/{destination.url}/left/{i}",
                headers={**first.auth, "Upstash-Delay": "2s"},
            ).json()["messageId"]
            for i in range(5)
        ]
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "qstash_emulator", "dev", "--port", str(free_port())]
            + ["--redis-url", own_redis.url, "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        waited = time.monotonic() - started
        assert second.returncode == 1, second.stderr
        assert "another qstash-emulator is using this Redis" in second.stderr
        assert first.url in second.stderr and f"pid {first.proc.pid}" in second.stderr
        assert "QSTASH_URL" not in second.stdout
        assert waited >= TTL_MS / 1_000  # it gave a dying holder the lease's lifetime
        first.kill()

        started = time.monotonic()
        third = EmulatorProcess("--redis-url", own_redis.url, "--quiet")
        try:
            took = time.monotonic() - started
            destination.wait(5, timeout=15)

            def waiting() -> object:
                return httpx.get(f"{third.url}/_emulator/messages", headers=third.auth).json()

            wait_until(lambda: waiting() == {"messages": []}, what="nothing left to deliver")
            got = sorted(r.headers["upstash-message-id"] for r in destination.received)
            assert got == sorted(pending)  # each once
            assert took < TTL_MS / 1_000 + 5
            holder = redis.Redis.from_url(own_redis.url).get("qe:lease")
            assert holder is not None and str(third.proc.pid).encode() in holder
        finally:
            third.stop()
        # A clean stop gives the lease up: the next one need not wait for it to lapse.
        assert redis.Redis.from_url(own_redis.url).get("qe:lease") is None
    finally:
        if first.proc.poll() is None:
            first.kill()
