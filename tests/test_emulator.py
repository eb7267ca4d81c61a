"""The ``Emulator`` Python API, including the README's example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from qstash_emulator import Emulator

from .helpers import api, auth

README = Path(__file__).parent.parent / "README.md"


def _python_blocks(section: str) -> list[str]:
    text = README.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_readme_python_api_example_runs_as_written() -> None:
    (block,) = _python_blocks("The Python API")
    done = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_two_emulators_get_distinct_free_ports() -> None:
    with Emulator() as a, Emulator() as b:
        assert a.port != b.port and a.port > 0
        assert a.url == f"http://127.0.0.1:{a.port}"
        assert a.env() == {
            "QSTASH_URL": a.url,
            "QSTASH_TOKEN": a.token,
            "QSTASH_CURRENT_SIGNING_KEY": a.current_signing_key,
            "QSTASH_NEXT_SIGNING_KEY": a.next_signing_key,
        }


def test_start_and_stop_are_idempotent() -> None:
    emulator = Emulator()
    assert emulator.start() is emulator.start()
    emulator.stop()
    emulator.stop()


def test_reset_forgets_messages_and_attempts(emulator: Emulator) -> None:
    creds = auth(emulator)
    r = httpx.post(
        f"{emulator.url}/v2/publish/http://127.0.0.1:9/x", headers={**creds, "Upstash-Delay": "1h"}
    )
    message_id = r.json()["messageId"]
    emulator.reset()
    assert httpx.get(f"{emulator.url}/v2/messages/{message_id}", headers=creds).status_code == 404
    assert httpx.get(f"{emulator.url}/v2/events", headers=creds).json()["events"] == []


def test_created_users_are_isolated_and_read_only_tokens_cannot_write(emulator: Emulator) -> None:
    alice, bob = emulator.create_user(), emulator.create_user()
    a = auth(alice)
    r = httpx.post(
        f"{emulator.url}/v2/publish/http://127.0.0.1:9/x", headers={**a, "Upstash-Delay": "1h"}
    )
    message_id = r.json()["messageId"]
    b = auth(bob)
    assert httpx.get(f"{emulator.url}/v2/messages/{message_id}", headers=b).status_code == 404
    assert httpx.get(f"{emulator.url}/v2/keys", headers=a).json() == {
        "current": alice.current_signing_key,
        "next": alice.next_signing_key,
    }
    ro = auth(alice.readonly_token)
    assert httpx.get(f"{emulator.url}/v2/messages/{message_id}", headers=ro).status_code == 200
    w = httpx.post(f"{emulator.url}/v2/publish/http://127.0.0.1:9/x", headers=ro)
    assert w.status_code == 403 and "read-only" in w.json()["error"]
    assert httpx.delete(f"{emulator.url}/v2/messages/{message_id}", headers=ro).status_code == 403


def test_a_wait_that_gives_up_says_what_is_pending() -> None:
    import asyncio
    import threading

    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from qstash_emulator import VirtualClock

    release = threading.Event()

    async def slow(request: object) -> Response:
        while not release.is_set():
            await asyncio.sleep(0.01)
        return Response()

    app = Starlette(routes=[Route("/slow", slow, methods=["POST"])])
    with Emulator(clock=VirtualClock()) as emulator:
        emulator.mount("https://app.example.com", app)
        with api(emulator) as client:
            answer = client.post("/v2/publish/https://app.example.com/slow")
        message_id = answer.json()["messageId"]
        with pytest.raises(TimeoutError) as info:
            emulator.run_until_idle(timeout=0.3)
        assert str(info.value) == (
            "timed out after 0.3s running until no message is due\n"
            "Pending messages:\n"
            f"  {message_id} POST https://app.example.com/slow: in flight"
        )
        with pytest.raises(TimeoutError, match="^timed out after 0.2s waiting until nothing"):
            emulator.wait_idle(timeout=0.2)
        release.set()
        emulator.wait_idle()
        assert [a.status for a in emulator.attempts] == [200]
