"""Upstash Workflow runs with the official Python SDK (``upstash-workflow``, FastAPI ``serve``,
signatures verified), on the virtual clock, asserted through the REST API (logs, DLQ)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from upstash_workflow import AsyncWorkflowContext

from qstash_emulator import Emulator

from .helpers import Destination, request, sdk
from .workflow_app import WorkflowApp

DAY = 86_400


@pytest.fixture
def app(virtual: Emulator) -> Iterator[WorkflowApp]:
    server = WorkflowApp(virtual)
    yield server
    server.stop()


def run_log(emulator: Emulator, run_id: str) -> dict[str, Any]:
    """The run's entry in ``GET /v2/workflows/logs``."""
    response = request(emulator, "GET", "/v2/workflows/logs", params={"workflowRunId": run_id})
    assert response.status_code == 200, response.text
    runs = response.json()["runs"]
    assert [r["workflowRunId"] for r in runs] == [run_id]
    run: dict[str, Any] = runs[0]
    return run


def steps(run: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """(group type, step name, state, out) of every logged step, in order."""
    return [
        (group["type"], step.get("stepName", ""), step["state"], step.get("out"))
        for group in run["steps"]
        for step in group["steps"]
    ]


def start(emulator: Emulator, url: str, body: Any, **kwargs: Any) -> None:
    """Start a run the way the Python SDK documents: a QStash publish to the endpoint."""
    with sdk(emulator) as client:
        client.message.publish_json(url=url, body=body, **kwargs)


def workflow_deliveries(emulator: Emulator, url: str) -> list[Any]:
    return [a for a in emulator.attempts if a.url == url]


def test_sequential_steps_replay_the_history_and_end_the_run(
    virtual: Emulator, app: WorkflowApp
) -> None:
    url = app.url + "/sequential"

    @app.route("/sequential")
    async def sequential(context: AsyncWorkflowContext[dict[str, int]]) -> str:
        n = context.request_payload["n"]

        async def add() -> int:
            return n + 1

        a = await context.run("add", add)

        async def double() -> int:
            return a * 2

        b = await context.run("double", double)
        app.log.append((context.workflow_run_id, a, b))
        return "done"

    start(virtual, url, {"n": 4}, headers={"X-Tenant": "t1"})
    virtual.run_until_idle()

    run_id, a, b = app.log[-1]
    assert (a, b) == (5, 10)
    run = run_log(virtual, run_id)
    assert run["workflowState"] == "RUN_SUCCESS"
    assert run["workflowUrl"] == url
    assert steps(run) == [
        ("sequential", "init", "STEP_SUCCESS", '{"n": 4}'),
        ("sequential", "add", "STEP_SUCCESS", "5"),
        ("sequential", "double", "STEP_SUCCESS", "10"),
    ]
    # The publish that reached the endpoint, then one delivery per step plus the last one
    # that finds no new step and ends the run.
    deliveries = workflow_deliveries(virtual, url)
    assert [d.status for d in deliveries] == [200] * 4
    first, *runs = deliveries
    assert "Upstash-Workflow-Runid" not in first.request.headers
    for delivery in runs:
        headers = delivery.request.headers
        assert headers["Upstash-Workflow-Runid"] == run_id
        assert headers["Upstash-Workflow-Sdk-Version"] == "1"
        assert headers["Upstash-Workflow-Createdat"] == str(run["workflowRunCreatedAt"])
        assert headers["X-Tenant"] == "t1"
    # Each delivery carries the history up to and including the delivered message.
    bodies = [json.loads(d.request.body) for d in runs]
    assert [len(b) for b in bodies] == [1, 2, 3]
    assert [item["callType"] for item in bodies[-1]] == ["step", "step", "step"]
    assert base64.b64decode(bodies[-1][0]["body"]) == b'{"n": 4}'
    last = json.loads(base64.b64decode(bodies[-1][2]["body"]))
    assert (last["stepId"], last["stepName"], last["stepType"], last["out"]) == (
        2,
        "double",
        "Run",
        "10",
    )
    assert bodies[-1][2]["messageId"] == runs[-1].message_id


def test_sleep_and_sleep_until_follow_the_virtual_clock(
    virtual: Emulator, app: WorkflowApp
) -> None:
    url = app.url + "/sleepy"
    times: list[int] = []

    @app.route("/sleepy")
    async def sleepy(context: AsyncWorkflowContext[dict[str, int]]) -> None:
        async def mark() -> int:
            times.append(virtual.clock.now_ms())
            return len(times)

        await context.run("before", mark)
        await context.sleep("a week", 7 * DAY)
        await context.run("after sleep", mark)
        await context.sleep_until("until", context.request_payload["until"])
        await context.run("after sleep_until", mark)

    until = virtual.clock.now_ms() // 1_000 + 30 * DAY
    wall = time.monotonic()
    start(virtual, url, {"until": until})
    virtual.run_until_idle()
    assert time.monotonic() - wall < 10

    assert len(times) == 3
    assert times[1] - times[0] >= 7 * DAY * 1_000
    assert times[2] >= until * 1_000
    sleeps = [a for a in workflow_deliveries(virtual, url) if a.started_at >= times[1]]
    assert sleeps, "the steps after the sleep were delivered"
    run = run_log(virtual, virtual.attempts[-1].request.headers["Upstash-Workflow-Runid"])
    assert run["workflowState"] == "RUN_SUCCESS"
    logged = {s["stepName"]: s for g in run["steps"] for s in g["steps"]}
    assert logged["a week"]["stepType"] == "SleepFor"
    assert logged["a week"]["sleepFor"] == 7 * DAY
    assert logged["until"]["stepType"] == "SleepUntil"
    assert logged["until"]["sleepUntil"] == until


def test_call_reaches_a_third_party_and_returns_its_answer(
    virtual: Emulator, app: WorkflowApp, destination: Destination
) -> None:
    url = app.url + "/call"
    destination.script("/api", (201, {"Content-Type": "application/json"}, b'{"ok": true}'))

    @app.route("/call")
    async def call(context: AsyncWorkflowContext[None]) -> None:
        response = await context.call(
            "third party",
            url=destination.url + "/api",
            method="PUT",
            body={"q": 1},
            headers={"X-Call": "c"},
        )

        async def keep() -> list[Any]:
            return [response.status, response.body]

        app.log.append(await context.run("keep", keep))

    start(virtual, url, None)
    virtual.run_until_idle()

    assert app.log[-1] == [201, {"ok": True}]
    (request,) = destination.received
    assert (request.method, request.path, request.body) == ("PUT", "/api", b'{"q": 1}')
    assert request.headers["x-call"] == "c"
    assert not [h for h in request.headers if h.startswith("upstash-workflow")]
    # The answer comes back as a callback: no protocol version header, so the SDK reads it as
    # a call result and publishes the Call step.
    (callback,) = [a for a in virtual.attempts if a.kind == "callback"]
    assert callback.url == url
    assert "Upstash-Workflow-Sdk-Version" not in callback.request.headers
    assert callback.request.headers["Upstash-Workflow-Callback"] == "true"
    assert callback.request.headers["Upstash-Workflow-Runid"]
    run = run_log(virtual, callback.request.headers["Upstash-Workflow-Runid"])
    assert run["workflowState"] == "RUN_SUCCESS"
    (called,) = [s for g in run["steps"] for s in g["steps"] if s["stepName"] == "third party"]
    assert called["stepType"] == "Call"
    assert called["callUrl"] == destination.url + "/api"
    assert called["callMethod"] == "PUT"
    assert called["callBody"] == '{"q": 1}'
    assert called["callResponseStatus"] == 201
    assert called["callResponseBody"] == '{"ok": true}'


def test_a_failing_step_fails_the_run_and_calls_the_failure_function(
    virtual: Emulator, app: WorkflowApp
) -> None:
    url = app.url + "/failing"
    failures: list[Any] = []

    async def on_failure(
        context: AsyncWorkflowContext[dict[str, str]],
        status: int,
        response: str,
        headers: dict[str, str],
    ) -> None:
        failures.append((context.workflow_run_id, context.request_payload, status, response))

    @app.route("/failing", failure_function=on_failure, retries=1)
    async def failing(context: AsyncWorkflowContext[dict[str, str]]) -> None:
        async def ok() -> str:
            return "fine"

        await context.run("ok", ok)

        async def boom() -> None:
            raise ValueError("boom: " + context.request_payload["why"])

        await context.run("boom", boom)

    start(virtual, url, {"why": "testing"})
    virtual.run_until_idle()

    ((run_id, payload, status, message),) = failures
    assert (payload, status, message) == ({"why": "testing"}, 500, "boom: testing")
    run = run_log(virtual, run_id)
    assert run["workflowState"] == "RUN_FAILED"
    assert steps(run)[:2] == [
        ("sequential", "init", "STEP_SUCCESS", '{"why": "testing"}'),
        ("sequential", "ok", "STEP_SUCCESS", '"fine"'),
    ]
    (pending,) = run["steps"][-1]["steps"]
    assert run["steps"][-1]["type"] == "next"
    assert pending["state"] == "STEP_FAILED"
    assert [e["status"] for e in pending["errors"]] == [500, 500]
    assert "boom: testing" in pending["errors"][-1]["body"]
    failure = run["failureFunction"]
    assert failure["state"] == "CALLBACK_SUCCESS"
    assert failure["failStatus"] == 500
    assert failure["url"] == url
    assert failure["dlqId"] == run["dlqId"]
    # The failed step is a dead letter; the failure call is not.
    dlq = request(virtual, "GET", "/v2/dlq").json()["messages"]
    assert [m["dlqId"] for m in dlq] == [run["dlqId"]]
    (failure_call,) = [a for a in virtual.attempts if a.kind == "failure_callback"]
    body = json.loads(failure_call.request.body)
    assert body["workflowRunId"] == run_id
    assert body["workflowCreatedAt"] == run["workflowRunCreatedAt"]
    assert base64.b64decode(body["sourceBody"]) == b'{"why": "testing"}'
    assert failure_call.request.headers["Upstash-Workflow-Is-Failure"] == "true"
    assert "Upstash-Workflow-Sdk-Version" not in failure_call.request.headers


def test_cancel_drops_the_pending_step_and_refuses_later_messages(
    virtual: Emulator, app: WorkflowApp
) -> None:
    url = app.url + "/cancel"
    ran: list[str] = []

    @app.route("/cancel")
    async def cancellable(context: AsyncWorkflowContext[None]) -> None:
        async def first() -> None:
            ran.append(context.workflow_run_id)

        await context.run("first", first)
        await context.sleep("wait", DAY)

        async def never() -> None:
            ran.append("after the sleep")

        await context.run("never", never)

    start(virtual, url, None)
    virtual.wait_idle()
    (run_id,) = ran
    assert run_log(virtual, run_id)["workflowState"] == "RUN_STARTED"

    response = request(virtual, "DELETE", f"/v2/workflows/runs/{run_id}?cancel=true")
    assert response.status_code == 200, response.text
    virtual.run_until_idle()

    assert ran == [run_id]
    run = run_log(virtual, run_id)
    assert run["workflowState"] == "RUN_CANCELED"
    assert [s["state"] for s in run["steps"][-1]["steps"]] == ["STEP_CANCELED"]
    assert request(virtual, "DELETE", f"/v2/workflows/runs/{run_id}").status_code == 404
    # A message for the ended run is refused with 400: the SDKs read it as "the run is over".
    refused = request(
        virtual,
        "POST",
        "/v2/publish/" + url,
        headers={"Upstash-Workflow-RunId": run_id, "Upstash-Workflow-Init": "false"},
        content=b"{}",
    )
    assert refused.status_code == 400
    assert run_id in refused.json()["error"]


def test_the_sdk_may_report_the_end_of_a_run_that_has_ended(
    virtual: Emulator, app: WorkflowApp
) -> None:
    """The JS SDK's own suite, run against production, sends ``?cancel=false`` twice for one
    run and expects both to succeed; a repeat changes nothing, and a cancel is still a 404."""
    url = app.url + "/twice"

    @app.route("/twice")
    async def twice(context: AsyncWorkflowContext[None]) -> str:
        async def only() -> str:
            app.log.append(context.workflow_run_id)
            return "one"

        await context.run("only", only)
        return "done"

    start(virtual, url, None)
    virtual.run_until_idle()
    (run_id,) = app.log
    ended = run_log(virtual, run_id)
    assert ended["workflowState"] == "RUN_SUCCESS"

    virtual.clock.advance(5)
    again = request(virtual, "DELETE", f"/v2/workflows/runs/{run_id}?cancel=false", content=b'"2"')
    assert (again.status_code, again.content) == (200, b"")
    assert run_log(virtual, run_id) == ended
    never = request(virtual, "DELETE", "/v2/workflows/runs/wfr_never?cancel=false", content=b"")
    assert never.status_code == 200
    assert (
        request(virtual, "GET", "/v2/workflows/logs?workflowRunId=wfr_never").json()["runs"] == []
    )
    cancel = request(virtual, "DELETE", f"/v2/workflows/runs/{run_id}?cancel=true")
    assert cancel.status_code == 404
    assert run_id in cancel.json()["error"]


def test_the_trigger_route_needs_an_sdk_that_names_its_version(
    virtual: Emulator, app: WorkflowApp
) -> None:
    """upstash-workflow 2.0.0 does not say its version in its answers: runs of Python
    endpoints start through a publish, not through the trigger route."""

    @app.route("/triggered")
    async def triggered(context: AsyncWorkflowContext[None]) -> None:
        async def step() -> None:
            app.log.append("ran")

        await context.run("step", step)

    r = request(virtual, "POST", f"/v2/trigger/{app.url}/triggered", content=b"{}")
    assert r.status_code == 200, r.text
    virtual.run_until_idle()

    assert app.log == ["ran"]  # the first step runs before the answer is read
    run = run_log(virtual, r.json()["workflowRunId"])
    assert run["workflowState"] == "RUN_FAILED"
    (pending,) = [s for s in run["steps"][-1]["steps"] if s["state"] == "STEP_FAILED"]
    assert pending["messageId"] == run["steps"][0]["steps"][0]["messageId"]  # the first step
    assert pending["errors"][0]["error"] == (
        "trigger rest api is only usable with sdk versions after v1.0.0 major version"
    )
