"""Workflow state lives in the store: with a real Redis, a SIGKILLed emulator restarted on it
carries on with its runs, its waiters and the events kept for runs not waiting yet."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

import httpx
import pytest
import redis

from qstash_emulator import DEFAULT_USERS

from .servers import EmulatorProcess, free_port
from .test_workflows_js import JS, JsApp

pytestmark = [
    pytest.mark.slow,  # a crash run: emulator processes, a SIGKILL, a JS app (6 s)
    pytest.mark.redis,
    pytest.mark.node,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (JS / "node_modules" / "@upstash" / "workflow").is_dir(),
        reason="tests/js/node_modules is missing: run `npm install` in tests/js",
    ),
]


def _until(check: Callable[[], object], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def test_runs_waiters_and_kept_events_survive_a_sigkill(redis_url: str) -> None:
    store = redis_url.rstrip("/") + "/6"  # a database of its own, empty
    redis.Redis.from_url(store).flushdb()
    port = free_port()
    user = DEFAULT_USERS[0]
    emulator = EmulatorProcess("--redis-url", store, port=port)
    qstash = {
        "QSTASH_URL": emulator.url,
        "QSTASH_TOKEN": user.token,
        "QSTASH_CURRENT_SIGNING_KEY": user.current_signing_key,
        "QSTASH_NEXT_SIGNING_KEY": user.next_signing_key,
    }
    js = JsApp(qstash)
    api = httpx.Client(base_url=emulator.url, headers=emulator.auth)
    try:
        waiting = js.do("trigger", {"url": js.url + "/waiting", "body": {"eventId": "later"}})
        kept = js.do(
            "trigger",
            {"url": js.url + "/waiting", "body": {"eventId": "early"}, "delay": "2s"},
        )["workflowRunId"]
        napping = js.do("trigger", {"url": js.url + "/nap", "body": {}})["workflowRunId"]
        _until(lambda: api.get("/v2/waiters/later").json(), "the waiter of 'later'")
        early = api.post(f"/v2/notify/{kept}/early", content=b'"kept for the run"')
        assert early.json() == []  # the run is not waiting yet: the event is kept for it

        emulator.kill()  # SIGKILL: the nap's wake-up, the waiter and the event are in Redis
        emulator = EmulatorProcess("--redis-url", store, port=port)

        (answer,) = api.post("/v2/notify/later", content=b'{"paid": true}').json()
        assert answer["workflowRunId"] == waiting["workflowRunId"]
        _until(lambda: len(js.results("waiting")) == 2 and js.results("nap"), "all three runs")
        got = {r["runId"]: r for r in js.results("waiting")}
        assert got[waiting["workflowRunId"]]["eventData"] == {"paid": True}
        assert got[kept]["eventData"] == "kept for the run"
        assert js.results("nap") == [napping]
        _until(
            lambda: (
                [r["workflowState"] for r in api.get("/v2/workflows/logs").json()["runs"]]
                == ["RUN_SUCCESS"] * 3
            ),
            "the three runs to end",
        )
    finally:
        api.close()
        js.stop()
        emulator.stop()
