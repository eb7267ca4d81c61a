"""``GET /_emulator/health``: the readiness probe, open without a token and never faulted."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version

import httpx
import pytest

from qstash_emulator import Emulator, Settings

from .helpers import RedisServer, auth


def test_the_probe_answers_without_a_token(emulator: Emulator) -> None:
    r = httpx.get(f"{emulator.url}/_emulator/health")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert isinstance(body.pop("uptimeMs"), int)
    assert body == {
        "status": "ok",
        "emulator": "qstash-emulator",
        "version": version("qstash-emulator"),
        "store": "memory",
    }


def test_the_uptime_counts_from_the_start() -> None:
    with Emulator() as emu:
        first = httpx.get(f"{emu.url}/_emulator/health").json()["uptimeMs"]
        assert 0 <= first < 10_000
        with httpx.Client() as http:
            for _ in range(200):  # bounded: the uptime moves within a few ms
                later = http.get(f"{emu.url}/_emulator/health").json()["uptimeMs"]
                if later > first:
                    break
        assert later > first


def test_faults_do_not_reach_the_probe(emulator: Emulator) -> None:
    creds = auth(emulator)
    fault = {"kind": "error", "status": 503, "path": "/", "times": None}
    assert httpx.post(f"{emulator.url}/_emulator/faults", json=fault, headers=creds).is_success
    assert httpx.get(f"{emulator.url}/v2/keys", headers=creds).status_code == 503
    assert httpx.get(f"{emulator.url}/_emulator/health").status_code == 200


def test_an_unknown_query_parameter_is_a_400(emulator: Emulator) -> None:
    r = httpx.get(f"{emulator.url}/_emulator/health", params={"verbose": "1"})
    assert r.status_code == 400
    assert r.json() == {
        "error": "invalid query parameter 'verbose': GET /_emulator/health takes no query "
        "parameters"
    }


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.mark.redis
def test_a_store_that_does_not_answer_is_a_503(redis_server: RedisServer) -> None:
    with Emulator(Settings(port=0, redis_url=redis_server.url)) as emu:
        probe = f"{emu.url}/_emulator/health"
        assert httpx.get(probe).json()["store"] == "redis"
        redis_server.kill()
        r = httpx.get(probe)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"].startswith("store unavailable: ")
        redis_server.start()
        assert httpx.get(probe).status_code == 200
