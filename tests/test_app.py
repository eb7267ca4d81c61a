"""The application's error answers: a store that does not answer is a 503, not a 500."""

from __future__ import annotations

import httpx
import pytest

from qstash_emulator import Emulator


def test_a_store_outage_is_a_503_with_retry_after(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    server = emulator.runtime.store.redis.connection_pool.connection_kwargs["server"]
    auth = {"Authorization": f"Bearer {emulator.token}"}
    server.connected = False
    try:
        for method, path in [("GET", "/v2/logs"), ("POST", "/v2/publish/http://127.0.0.1:9/x")]:
            r = httpx.request(method, f"{emulator.url}{path}", headers=auth)
            assert r.status_code == 503, r.text
            assert r.json()["error"].startswith("store unavailable: ")
            assert r.headers["retry-after"] == "1"
    finally:
        server.connected = True
    assert httpx.get(f"{emulator.url}/v2/logs", headers=auth).status_code == 200
    assert "Traceback" not in caplog.text and "unexpected error" not in caplog.text
