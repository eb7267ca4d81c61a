"""The application's error answers (a store that does not answer is a 503, not a 500), and
whether its answers keep the connection open."""

from __future__ import annotations

import httpx
import pytest

from qstash_emulator import Emulator

from .helpers import auth, fake_redis


def test_a_store_outage_is_a_503_with_retry_after(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    server = fake_redis(emulator)
    creds = auth(emulator)
    server.connected = False
    try:
        for method, path in [("GET", "/v2/logs"), ("POST", "/v2/publish/http://127.0.0.1:9/x")]:
            r = httpx.request(method, f"{emulator.url}{path}", headers=creds)
            assert r.status_code == 503, r.text
            assert r.json()["error"].startswith("store unavailable: ")
            assert r.headers["retry-after"] == "1"
    finally:
        server.connected = True
    assert httpx.get(f"{emulator.url}/v2/logs", headers=creds).status_code == 200
    assert "Traceback" not in caplog.text and "unexpected error" not in caplog.text


@pytest.mark.parametrize("keep_alive", [True, False])
def test_keep_alive_false_closes_each_connection_after_its_answer(keep_alive: bool) -> None:
    with Emulator(port=0, keep_alive=keep_alive) as emulator, httpx.Client() as client:
        creds = auth(emulator)
        answers = [
            client.get(f"{emulator.url}/v2/queues", headers=creds),  # a handler's answer
            client.get(f"{emulator.url}/v2/queues"),  # a 401
            client.get(f"{emulator.url}/v2/nowhere", headers=creds),  # a 404
        ]
        assert [r.status_code for r in answers] == [200, 401, 404]
        expected = None if keep_alive else "close"
        assert [r.headers.get("connection") for r in answers] == [expected] * 3


def test_a_method_not_allowed_names_the_allowed_ones(emulator: Emulator) -> None:
    """RFC 9110: a 405 carries ``Allow`` (a fuzzer's undeclared-method check looks for it)."""
    creds = auth(emulator)
    wrong = httpx.put(f"{emulator.url}/v2/queues", headers=creds)
    assert (wrong.status_code, wrong.json()) == (
        405,
        {"error": "method PUT not allowed on /v2/queues"},
    )
    assert sorted(wrong.headers["allow"].split(", ")) == ["GET", "HEAD", "POST"]
