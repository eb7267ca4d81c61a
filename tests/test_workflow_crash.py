"""Workflow state lives in the store: with a real Redis, a SIGKILLed emulator restarted on it
carries on with its runs, its waiters and the events kept for runs not waiting yet."""

from __future__ import annotations

import shutil

import pytest
import redis

from qstash_emulator import DEFAULT_USERS

from .helpers import JS, EmulatorProcess, JsApp, api, free_port, wait_until

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
    http = api(emulator)
    try:
        waiting = js.do("trigger", {"url": js.url + "/waiting", "body": {"eventId": "later"}})
        kept = js.do(
            "trigger",
            {"url": js.url + "/waiting", "body": {"eventId": "early"}, "delay": "2s"},
        )["workflowRunId"]
        napping = js.do("trigger", {"url": js.url + "/nap", "body": {}})["workflowRunId"]
        wait_until(lambda: http.get("/v2/waiters/later").json(), 20, "the waiter of 'later'")
        early = http.post(f"/v2/notify/{kept}/early", content=b'"kept for the run"')
        assert early.json() == []  # the run is not waiting yet: the event is kept for it

        emulator.kill()  # SIGKILL: the nap's wake-up, the waiter and the event are in Redis
        emulator = EmulatorProcess("--redis-url", store, port=port)

        (answer,) = http.post("/v2/notify/later", content=b'{"paid": true}').json()
        assert answer["workflowRunId"] == waiting["workflowRunId"]
        wait_until(
            lambda: len(js.results("waiting")) == 2 and js.results("nap"), 20, "all three runs"
        )
        got = {r["runId"]: r for r in js.results("waiting")}
        assert got[waiting["workflowRunId"]]["eventData"] == {"paid": True}
        assert got[kept]["eventData"] == "kept for the run"
        assert js.results("nap") == [napping]
        wait_until(
            lambda: (
                [r["workflowState"] for r in http.get("/v2/workflows/logs").json()["runs"]]
                == ["RUN_SUCCESS"] * 3
            ),
            20,
            "the three runs to end",
        )
    finally:
        http.close()
        js.stop()
        emulator.stop()
