"""Upstash Workflow under the ``qstash`` fixture: a mounted FastAPI workflow (the official
Python SDK) and a JS one (tests/js/workflow_app.mjs) run on the virtual clock; runs are looked
at, asserted on with near-miss messages, notified, and checked at teardown."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

JS = Path(__file__).parent / "js"

WORKFLOW_APP = """
import time

from fastapi import FastAPI
from upstash_workflow import AsyncWorkflowContext
from upstash_workflow.fastapi import Serve

DAY = 86_400
SHOP = "https://shop.example.com"


def make_app(record):
    # Built in the test: the SDK reads QSTASH_TOKEN, QSTASH_URL and the signing keys when a
    # workflow is served, and the fixture sets them for each test.
    app = FastAPI()
    serve = Serve(app)

    @serve.post("/orders")
    async def orders(context: AsyncWorkflowContext[dict]) -> None:
        order = context.request_payload

        async def reserve():
            return {"reserved": order["items"]}

        reserved = await context.run("reserve", reserve)
        await context.sleep("cool off", 7 * DAY)

        async def charge():
            if order.get("declined"):
                raise ValueError("card declined")
            return order["items"] * 10

        total = await context.run("charge", charge)
        await context.sleep_until("ship day", order["ship_at"])

        async def ship():
            record.append(total)
            return "shipped"

        await context.run("ship", ship)

    return app
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    """A separate process, as a user runs it: the SDK's clients (it has no close()) are
    garbage-collected there, not in this session, which treats warnings as errors."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "conftest_plugin.plugin")


def test_python_workflows_run_assert_and_get_checked_under_the_fixture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """upstash-workflow's FastAPI serve mounted in process: a week of virtual time in no time,
    its run asserted, a near miss shown, a run left unfinished named at teardown; and its sync
    serve (Flask) through the WSGI mount, whose blocking client calls back into the emulator
    while the delivery is in flight."""
    pytester.makeconftest(WORKFLOW_APP)
    pytester.makepyfile(
        test_runs="""
        import time
        from conftest import DAY, SHOP, make_app

        def test_order(qstash):
            shipped = []
            qstash.mount(SHOP, make_app(shipped))
            wall = time.monotonic()
            start = qstash.now_ms
            ship_at = start // 1000 + 10 * DAY
            qstash.client().message.publish_json(
                url=SHOP + "/orders", body={"items": 3, "ship_at": ship_at}
            )
            run = qstash.wait_for_run(url=SHOP + "/orders")
            # A week of sleep takes seconds of wall time (2.05 s seen with a load average of 15).
            assert time.monotonic() - wall < 15.0, time.monotonic() - wall
            assert run.state == "RUN_SUCCESS"
            assert run.step_names == ["reserve", "cool off", "charge", "ship day", "ship"]
            assert run.outputs["reserve"] == {"reserved": 3}
            assert run.outputs["charge"] == 30
            assert run.step("cool off").fields["sleepFor"] == 7 * DAY
            assert run.payload == {"items": 3, "ship_at": ship_at}
            assert shipped == [30]
            assert qstash.now_ms >= ship_at * 1000
            done = qstash.assert_run(run.run_id, state="RUN_SUCCESS", outputs={"ship": "shipped"})
            assert done == run
            assert qstash.runs(state="RUN_SUCCESS") == [run]
            assert qstash.run(run.run_id) == run

        def test_near_miss(qstash):
            qstash.mount(SHOP, make_app([]))
            qstash.client().message.publish_json(
                url=SHOP + "/orders", body={"items": 1, "ship_at": 0, "declined": True}
            )
            qstash.wait_for_run(url=SHOP + "/orders")
            qstash.assert_run(state="RUN_SUCCESS", steps=["reserve", "cool off", "charge"])
        """,
        test_teardown="""
        from conftest import SHOP, make_app

        def test_left_sleeping(qstash):
            qstash.mount(SHOP, make_app([]))
            qstash.client().message.publish_json(
                url=SHOP + "/orders", body={"items": 1, "ship_at": 0}
            )
            qstash.wait_for(path="/orders", count=2)  # the start, then the first step

        def test_opted_out(qstash):
            qstash.mount(SHOP, make_app([]))
            qstash.client().message.publish_json(
                url=SHOP + "/orders", body={"items": 1, "ship_at": 0}
            )
            qstash.wait_for(path="/orders", count=2)

        test_opted_out = __import__("pytest").mark.qstash(checks=("dead_letters",))(
            test_opted_out
        )
        """,
        test_flask="""
        from flask import Flask
        from upstash_workflow.flask import Serve

        def make_app():
            app = Flask(__name__)

            @Serve(app).route("/greet")
            def greet(context):
                name = context.request_payload["name"]
                context.run("hello", lambda: f"hello {name}")
                context.sleep("a day", 86_400)
                context.run("again", lambda: f"hello again {name}")

            return app

        def test_flask_workflow(qstash):
            qstash.mount("https://flask.example.com", make_app())
            qstash.client().message.publish_json(
                url="https://flask.example.com/greet", body={"name": "Ada"}
            )
            run = qstash.wait_for_run(url="https://flask.example.com/greet", state="RUN_SUCCESS")
            assert run.outputs == {"hello": "hello Ada", "a day": None, "again": "hello again Ada"}
        """,
    )
    result = _run(pytester, monkeypatch)
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*no workflow run matched: state='RUN_SUCCESS', steps=*",
            "*1 run(s), closest first:*",
            # ? for a bracket: fnmatch reads [...] as a character class
            "*wfr_* https://shop.example.com/orders RUN_FAILED, steps ?'reserve', 'cool off'?*"
            "STEP_FAILED*card declined*",
            "*state 'RUN_FAILED' != 'RUN_SUCCESS'*",
            "*steps ?'reserve', 'cool off'? != ?'reserve', 'cool off', 'charge'?*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_left_sleeping*",
            "*qstash teardown checks failed:*",
            "*1 workflow run(s) not finished (carry them to their end with "
            "qstash.wait_for_run(...)*",
            "*wfr_* https://shop.example.com/orders RUN_STARTED, steps ?'reserve'?*",
        ]
    )


@pytest.mark.node
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(
    not (JS / "node_modules" / "@upstash" / "workflow").is_dir(),
    reason="tests/js/node_modules is missing: run `npm install` in tests/js",
)
def test_a_js_workflow_sleeps_a_week_and_times_out_a_day_long_wait_in_under_a_second(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JS SDK's waitForEvent under the fixture: notified from the test, and timed out."""
    pytester.makepyfile(
        f"""
        import json, os, subprocess, time
        import httpx

        DAY = 86_400_000

        def start_app():
            proc = subprocess.Popen(
                ["node", "workflow_app.mjs"], cwd={str(JS)!r}, env=dict(os.environ),
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )
            return proc, json.loads(proc.stdout.readline())["url"]

        def trigger(app, path, body):
            r = httpx.post(app + "/_do", json={{"target": "client", "method": "trigger",
                "args": [{{"url": app + path, "body": body}}]}})
            return r.json()["workflowRunId"]

        def test_a_week_and_a_day(qstash):
            proc, app = start_app()
            try:
                start, wall = qstash.now_ms, time.monotonic()
                run_id = trigger(app, "/week", {{}})
                run = qstash.wait_for_run(run_id)
                took = time.monotonic() - wall
                assert took < 1.0, took
                assert run.state == "RUN_SUCCESS"
                assert run.step_names == ["start", "a week", "a day's wait", "finish"]
                assert run.step("a week").fields["sleepFor"] == "7d"
                assert run.step("a day's wait").fields["waitTimeout"] is True
                assert run.outputs["finish"] == {{"timedOut": True}}
                assert qstash.now_ms - start >= 8 * DAY
            finally:
                stop(proc)

        def test_notify_from_the_test(qstash):
            proc, app = start_app()
            try:
                run_id = trigger(app, "/waiting", {{"eventId": "paid"}})
                qstash.run_until_idle(max_seconds=0)
                assert [w["url"] for w in qstash.waiters("paid")] == [app + "/waiting"]
                (answer,) = qstash.notify("paid", {{"amount": 5}})
                assert answer["workflowRunId"] == run_id
                run = qstash.wait_for_run(run_id, state="RUN_SUCCESS")
                assert run.step("wait").fields["waitTimeout"] is False
                assert qstash.waiters("paid") == []
            finally:
                stop(proc)

        def stop(proc):
            proc.terminate()
            proc.wait(10)
            proc.stdout.close()
        """
    )
    result = _run(pytester, monkeypatch)
    result.assert_outcomes(passed=2)
