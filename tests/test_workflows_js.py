"""Upstash Workflow runs with the official JS SDK (``@upstash/workflow``, pinned in tests/js):
workflows and the SDK's Client in tests/js/workflow_app.mjs, driven from here on the virtual
clock, every delivery's signature verified by the SDK."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qstash_emulator import Emulator, VirtualClock

from .helpers import JS, Destination, JsApp, JsError, request

DAY = 86_400

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (JS / "node_modules" / "@upstash" / "workflow").is_dir(),
        reason="tests/js/node_modules is missing: run `npm install` in tests/js",
    ),
]


@pytest.fixture(scope="module")
def js_app(virtual_session: Emulator) -> Iterator[JsApp]:
    app = JsApp(virtual_session)
    yield app
    app.stop()


@pytest.fixture
def js(js_app: JsApp, virtual: Emulator) -> JsApp:
    js_app.clear()
    return js_app


def logged(js: JsApp, run_id: str) -> dict[str, Any]:
    """The run as the JS client's ``logs`` shows it."""
    page = js.do("logs", {"workflowRunId": run_id})
    assert [r["workflowRunId"] for r in page["runs"]] == [run_id]
    run: dict[str, Any] = page["runs"][0]
    return run


def step_names(run: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(g["type"], [s.get("stepName", s["state"]) for s in g["steps"]]) for g in run["steps"]]


def test_trigger_runs_the_steps_with_the_trigger_headers_and_label(
    js: JsApp, virtual: Emulator
) -> None:
    started = js.do(
        "trigger",
        {
            "url": js.url + "/steps",
            "body": {"n": 20},
            "headers": {"X-Tenant": "acme"},
            "workflowRunId": "steps-1",
            "label": "nightly",
        },
    )
    assert started == {"workflowRunId": "wfr_steps-1"}
    virtual.run_until_idle()

    run = logged(js, "wfr_steps-1")
    assert js.results("steps") == [
        {
            "runId": "wfr_steps-1",
            "a": 21,
            "b": 42,
            "header": "acme",
            "label": "nightly",
            "createdAt": run["workflowRunCreatedAt"],
        }
    ]
    assert run["workflowState"] == "RUN_SUCCESS"
    assert run["workflowRunResponse"] == '{"total":42}'
    assert run["label"] == "nightly"
    assert step_names(run) == [
        ("sequential", ["init"]),
        ("sequential", ["add"]),
        ("sequential", ["double"]),
    ]
    # A second trigger with the id of a running run starts nothing; an ended one's id may.
    again = js.do(
        "trigger", {"url": js.url + "/steps", "body": {"n": 1}, "workflowRunId": "steps-1"}
    )
    assert again == {"workflowRunId": "wfr_steps-1"}
    virtual.run_until_idle()
    page = js.do("logs", {"workflowRunId": "wfr_steps-1"})
    assert [r["workflowState"] for r in page["runs"]] == ["RUN_SUCCESS", "RUN_SUCCESS"]


def test_sleep_and_sleep_until_take_no_wall_time(js: JsApp, virtual: Emulator) -> None:
    until = virtual.clock.now_ms() // 1_000 + 30 * DAY
    run_id = js.do("trigger", {"url": js.url + "/sleep", "body": {"until": until}})["workflowRunId"]
    virtual.run_until_idle()

    assert js.results("sleep") == [{"runId": run_id}]
    runs = [a for a in virtual.attempts if a.url == js.url + "/sleep"]
    starts = [a.started_at for a in runs]
    # before, a week later, and at `until`: the deliveries that ran each step.
    assert starts[-1] >= until * 1_000
    assert max(starts) - min(starts) >= 30 * DAY * 1_000 - 1_000
    run = logged(js, run_id)
    assert run["workflowState"] == "RUN_SUCCESS"
    logged_steps = {s["stepName"]: s for g in run["steps"] for s in g["steps"]}
    assert logged_steps["a week"]["sleepFor"] == "7d"
    assert logged_steps["until"]["sleepUntil"] == until


def test_parallel_steps_run_each_branch_once_and_continue_after_the_block(
    js: JsApp, virtual: Emulator
) -> None:
    run_id = js.do("trigger", {"url": js.url + "/parallel", "body": {}})["workflowRunId"]
    virtual.run_until_idle()

    assert js.results("parallel") == [{"runId": run_id, "d": "AB"}]
    run = logged(js, run_id)
    assert run["workflowState"] == "RUN_SUCCESS"
    assert step_names(run) == [
        ("sequential", ["init"]),
        ("parallel", ["a", "b", "c"]),
        ("sequential", ["after"]),
    ]


def test_call_goes_to_the_third_party_and_its_answer_is_the_step_result(
    js: JsApp, virtual: Emulator, destination: Destination
) -> None:
    destination.script("/api", (200, {"Content-Type": "application/json"}, b'{"answer": 42}'))
    run_id = js.do("trigger", {"url": js.url + "/call", "body": {"url": destination.url + "/api"}})[
        "workflowRunId"
    ]
    virtual.run_until_idle()

    assert js.results("call") == [
        {"runId": run_id, "status": 200, "body": {"answer": 42}, "type": ["application/json"]}
    ]
    (request,) = destination.received
    assert (request.method, request.body) == ("POST", b'{"question":42}')
    assert request.headers["x-call"] == "yes"
    run = logged(js, run_id)
    (call,) = [s for g in run["steps"] for s in g["steps"] if s["stepName"] == "third party"]
    assert (call["callUrl"], call["callMethod"], call["callResponseStatus"]) == (
        destination.url + "/api",
        "POST",
        200,
    )


def test_failure_function_gets_the_error_after_the_retries(js: JsApp, virtual: Emulator) -> None:
    run_id = js.do("trigger", {"url": js.url + "/failing", "body": {"order": 7}, "retries": 1})[
        "workflowRunId"
    ]
    virtual.run_until_idle()

    assert js.results("failing") == [
        {"runId": run_id, "payload": {"order": 7}, "failStatus": 500, "failResponse": "boom in js"}
    ]
    run = logged(js, run_id)
    assert run["workflowState"] == "RUN_FAILED"
    assert run["failureFunction"]["state"] == "CALLBACK_SUCCESS"
    (failed,) = run["steps"][-1]["steps"]
    assert (failed["state"], len(failed["errors"])) == ("STEP_FAILED", 2)


def test_non_retryable_error_fails_the_run_at_once_with_489(js: JsApp, virtual: Emulator) -> None:
    run_id = js.do("trigger", {"url": js.url + "/nonretryable", "body": {}})["workflowRunId"]
    virtual.run_until_idle()

    assert js.results("nonretryable") == [
        {"runId": run_id, "payload": {}, "failStatus": 489, "failResponse": "do not retry me"}
    ]
    (failed,) = logged(js, run_id)["steps"][-1]["steps"]
    assert [e["status"] for e in failed["errors"]] == [489]


def test_retry_settings_given_on_the_trigger_apply_to_later_steps(
    js: JsApp, virtual: Emulator
) -> None:
    js.do(
        "trigger",
        {"url": js.url + "/flaky", "body": {}, "retries": 2, "retryDelay": "5000 * (1 + retried)"},
    )
    virtual.run_until_idle()

    flaky = [a for a in virtual.attempts if a.url == js.url + "/flaky" and a.status == 500]
    assert [a.retried for a in flaky] == [0, 1, 2]
    gaps = [b.started_at - a.started_at for a, b in zip(flaky, flaky[1:], strict=False)]
    assert gaps == [5_000, 10_000]
    assert len(js.results("flaky")) == 1


def test_cancel_from_the_client_and_from_inside_the_run(js: JsApp, virtual: Emulator) -> None:
    sleeper = js.do("trigger", {"url": js.url + "/sleep", "body": {"until": 0}})["workflowRunId"]
    virtual.wait_idle()
    assert js.do("cancel", {"ids": sleeper}) == {"cancelled": 1}
    inside = js.do("trigger", {"url": js.url + "/cancel-inside", "body": {}})["workflowRunId"]
    virtual.run_until_idle()

    assert js.results("sleep") == []
    assert logged(js, sleeper)["workflowState"] == "RUN_CANCELED"
    assert js.results("cancel-inside") == [{"runId": inside}]
    assert js.results("cancel-inside-never") == []
    assert logged(js, inside)["workflowState"] == "RUN_CANCELED"
    assert js.do("cancel", [sleeper, inside]) == {"cancelled": 0}


def test_wait_for_event_is_resolved_by_notify(js: JsApp, virtual: Emulator) -> None:
    run_id = js.do("trigger", {"url": js.url + "/waiting", "body": {"eventId": "order-paid"}})[
        "workflowRunId"
    ]
    virtual.wait_idle()
    (waiter,) = js.do("getWaiters", {"eventId": "order-paid"})
    assert waiter["url"] == js.url + "/waiting"
    assert waiter["timeoutUrl"] == js.url + "/waiting"
    assert waiter["deadline"] == virtual.clock.now_ms() // 1_000 + DAY
    assert waiter["headers"]["Upstash-Workflow-Runid"] == [run_id]

    answers = js.do("notify", {"eventId": "order-paid", "eventData": {"amount": 5}})
    assert [(a["workflowRunId"], a["waiter"]["url"]) for a in answers] == [
        (run_id, js.url + "/waiting")
    ]
    assert answers[0]["messageId"].startswith("msg_")
    virtual.run_until_idle()

    assert js.results("waiting") == [
        {"runId": run_id, "eventData": {"amount": 5}, "timeout": False}
    ]
    assert js.do("getWaiters", {"eventId": "order-paid"}) == []
    assert js.do("notify", {"eventId": "order-paid", "eventData": "late"}) == []
    (wait,) = [
        s for g in logged(js, run_id)["steps"] for s in g["steps"] if s["stepName"] == "wait"
    ]
    assert (wait["stepType"], wait["waitEventId"], wait["waitTimeout"]) == (
        "Wait",
        "order-paid",
        False,
    )


def test_notify_with_a_run_id_is_kept_until_the_run_waits(js: JsApp, virtual: Emulator) -> None:
    """Lookback: the event comes before the run reaches its wait, and is not lost."""
    run_id = js.do(
        "trigger",
        {"url": js.url + "/waiting", "body": {"eventId": "early"}, "delay": "10s"},
    )["workflowRunId"]
    assert (
        js.do("notify", {"eventId": "early", "eventData": "first", "workflowRunId": run_id}) == []
    )
    virtual.run_until_idle()

    assert js.results("waiting") == [{"runId": run_id, "eventData": "first", "timeout": False}]


def test_wait_for_event_times_out_on_the_virtual_clock(js: JsApp, virtual: Emulator) -> None:
    run_id = js.do(
        "trigger", {"url": js.url + "/waiting", "body": {"eventId": "never", "timeout": "1d"}}
    )["workflowRunId"]
    start = virtual.clock.now_ms()
    virtual.run_until_idle()

    assert js.results("waiting") == [{"runId": run_id, "timeout": True}]
    assert virtual.clock.now_ms() - start >= DAY * 1_000
    assert js.do("getWaiters", {"eventId": "never"}) == []


def test_context_notify_resolves_another_runs_wait(js: JsApp, virtual: Emulator) -> None:
    waiting = js.do("trigger", {"url": js.url + "/waiting", "body": {"eventId": "handoff"}})[
        "workflowRunId"
    ]
    virtual.wait_idle()
    notifier = js.do(
        "trigger", {"url": js.url + "/notifier", "body": {"eventId": "handoff", "data": [1, 2]}}
    )["workflowRunId"]
    virtual.run_until_idle()

    assert js.results("notifier") == [{"runId": notifier, "notified": 1}]
    assert js.results("waiting") == [{"runId": waiting, "eventData": [1, 2], "timeout": False}]


def test_a_webhook_call_is_the_waiting_steps_request(js: JsApp, virtual: Emulator) -> None:
    js.do("trigger", {"url": js.url + "/webhook", "body": {}})
    virtual.wait_idle()
    ((hook,),) = [js.results("webhook-url")]
    assert hook["webhookUrl"].startswith(virtual.url + "/v2/workflows/hooks/defaultUser/wfr_")
    called = httpx.post(hook["webhookUrl"], content=b"hello hook", headers={"X-Hook": "h1"})
    assert called.status_code == 200
    virtual.run_until_idle()

    assert js.results("webhook") == [
        {"timeout": False, "method": "POST", "body": "hello hook", "header": "h1"}
    ]


def test_invoke_runs_a_child_workflow_and_returns_its_result(js: JsApp, virtual: Emulator) -> None:
    parent = js.do("trigger", {"url": js.url + "/many/parent", "body": {"value": 3}})
    virtual.run_until_idle()
    failing = js.do("trigger", {"url": js.url + "/many/parent", "body": {"fail": True}})
    virtual.run_until_idle()

    ok, failed = js.results("invoke")
    assert ok == {
        "runId": parent["workflowRunId"],
        "body": {"out": "child got 3"},
        "isFailed": False,
        "isCanceled": False,
    }
    assert (failed["runId"], failed["isFailed"], failed["isCanceled"]) == (
        failing["workflowRunId"],
        True,
        False,
    )
    children = [r for r in js.do("logs", {"workflowUrl": js.url + "/many/child"})["runs"]]
    assert sorted(c["workflowState"] for c in children) == ["RUN_FAILED", "RUN_SUCCESS"]
    assert {c["invoker"]["workflowRunId"] for c in children} == {
        parent["workflowRunId"],
        failing["workflowRunId"],
    }
    parent_log = logged(js, parent["workflowRunId"])
    (step,) = [s for g in parent_log["steps"] for s in g["steps"] if s["stepType"] == "Invoke"]
    child = next(c for c in children if c["invoker"]["workflowRunId"] == parent["workflowRunId"])
    assert step["invokedWorkflowRunId"] == child["workflowRunId"]
    assert step["invokedWorkflowUrl"] == js.url + "/many/child"
    assert step["invokedWorkflowRunBody"] == '{"value":3}'


def test_the_trigger_rest_route_starts_a_run(js: JsApp, virtual: Emulator) -> None:
    r = request(
        virtual,
        "POST",
        f"/v2/trigger/{js.url}/steps",
        headers={"Upstash-Forward-X-Tenant": "rest", "Upstash-Workflow-RunId": "wfr_rest"},
        json={"n": 1},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"workflowRunId": "wfr_rest", "workflowCreatedAt": virtual.clock.now_ms()}
    virtual.run_until_idle()

    assert [{k: v for k, v in r.items() if k != "createdAt"} for r in js.results("steps")] == [
        {"runId": "wfr_rest", "a": 2, "b": 4, "header": "rest", "label": None}
    ]
    assert logged(js, "wfr_rest")["workflowState"] == "RUN_SUCCESS"
    calls = [a for a in virtual.attempts if a.url == js.url + "/steps"]
    assert len(calls) == 3  # two steps, then the call that ends the run


def test_the_trigger_route_lets_an_unknown_sdk_start_the_run_itself(
    js: JsApp, virtual: Emulator
) -> None:
    r = request(
        virtual,
        "POST",
        f"/v2/trigger/{js.url}/steps",
        headers={"Upstash-Workflow-Unknown-Sdk": "true", "Upstash-Workflow-RunId": "wfr_unknown"},
        json={"n": 1},
    )
    assert r.status_code == 200, r.text
    virtual.run_until_idle()

    assert [{k: v for k, v in r.items() if k != "createdAt"} for r in js.results("steps")] == [
        {"runId": "wfr_unknown", "a": 2, "b": 4, "header": None, "label": None}
    ]
    calls = [a for a in virtual.attempts if a.url == js.url + "/steps"]
    assert calls[0].request.headers["Upstash-Workflow-Unknown-Sdk"] == "true"
    assert "Upstash-Workflow-Sdk-Version" not in calls[0].request.headers
    assert len(calls) == 4  # one more: the SDK's own start of the run
    run = logged(js, "wfr_unknown")
    assert run["workflowState"] == "RUN_SUCCESS"
    assert [n for _, names in step_names(run) for n in names] == ["init", "add", "double"]


def test_batch_trigger_and_a_non_workflow_destination(
    js: JsApp, virtual: Emulator, destination: Destination
) -> None:
    r = request(
        virtual,
        "POST",
        "/v2/batch/trigger",
        json=[
            {"destination": js.url + "/steps", "body": '{"n": 5}'},
            {"destination": destination.url + "/plain", "headers": {"Upstash-Retries": "3"}},
            {"destination": "not a url"},
        ],
    )
    assert r.status_code == 201, r.text
    first, plain, bad = r.json()
    assert set(first) == {"workflowRunId", "workflowCreatedAt"}
    assert "error" in bad
    virtual.run_until_idle()

    assert [x["b"] for x in js.results("steps")] == [12]
    run = logged(js, plain["workflowRunId"])
    assert run["workflowState"] == "RUN_FAILED"
    (pending,) = run["steps"][-1]["steps"]
    assert pending["errors"][0]["error"].startswith("detected a non-workflow destination")
    assert len(destination.received) == 2  # the first step, then the failure call


def test_the_workflow_dlq_lists_resumes_restarts_and_retries_the_failure_function(
    js: JsApp, virtual: Emulator
) -> None:
    js.http.post("/_do/flags", json={"failureFails": True})
    run_id = js.do("trigger", {"url": js.url + "/resumable", "body": {"k": 1}, "retries": 0})[
        "workflowRunId"
    ]
    virtual.run_until_idle()

    listed = js.do("list", {"filter": {"workflowRunId": run_id}}, target="dlq")
    (entry,) = listed["messages"]
    assert "cursor" not in listed or listed["cursor"] is None
    assert (entry["workflowRunId"], entry["workflowUrl"]) == (run_id, js.url + "/resumable")
    assert entry["failureCallbackInfo"]["state"] == "CALLBACK_FAIL"
    assert entry["responseStatus"] == 500
    assert entry["workflowCreatedAt"] == logged(js, run_id)["workflowRunCreatedAt"]
    plain = request(virtual, "GET", "/v2/dlq", params={"source": "workflow"}).json()["messages"]
    assert [m["dlqId"] for m in plain] == [entry["dlqId"]]

    # The failure function failed: call it again, now that it works.
    js.http.post("/_do/flags", json={"failureFails": False})
    again = js.do("retryFailureFunction", {"dlqId": entry["dlqId"]}, target="dlq")
    assert again["workflowRunId"] == run_id
    virtual.run_until_idle()
    assert [f["runId"] for f in js.results("resumable-failure")] == [run_id, run_id]
    (entry,) = js.do("list", {"filter": {"workflowRunId": run_id}}, target="dlq")["messages"]
    assert entry["failureCallbackInfo"]["state"] == "CALLBACK_SUCCESS"
    with pytest.raises(JsError, match="has not failed"):
        js.do("retryFailureFunction", {"dlqId": entry["dlqId"]}, target="dlq")

    # Resume: a new run that keeps the first step's result and runs the failed one again.
    js.http.post("/_do/flags", json={"healed": True})
    resumed = js.do("resume", entry["dlqId"], target="dlq")
    ((new_run),) = resumed["workflowRuns"]
    assert new_run["workflowRunId"] != run_id
    virtual.run_until_idle()
    assert js.results("resumable") == [
        {"runId": new_run["workflowRunId"], "first": "one", "second": "two"}
    ]
    assert js.results("resumable-first") == [run_id]  # not run again
    assert js.do("list", target="dlq")["messages"] == []

    # Restart: another failed run starts over from its first step.
    js.http.post("/_do/flags", json={"healed": False})
    second = js.do("trigger", {"url": js.url + "/resumable", "body": {}, "retries": 0})
    virtual.run_until_idle()
    (entry,) = js.do("list", {"filter": {"workflowRunId": second["workflowRunId"]}}, target="dlq")[
        "messages"
    ]
    js.http.post("/_do/flags", json={"healed": True})
    restarted = js.do("restart", {"dlqIds": [entry["dlqId"]]}, target="dlq")
    ((fresh),) = restarted["workflowRuns"]
    virtual.run_until_idle()
    assert js.results("resumable-first") == [
        run_id,
        second["workflowRunId"],
        fresh["workflowRunId"],
    ]
    assert logged(js, fresh["workflowRunId"])["workflowState"] == "RUN_SUCCESS"

    # Delete.
    js.http.post("/_do/flags", json={"healed": False})
    third = js.do("trigger", {"url": js.url + "/resumable", "body": {}, "retries": 0})
    virtual.run_until_idle()
    (entry,) = js.do("list", target="dlq")["messages"]
    assert entry["workflowRunId"] == third["workflowRunId"]
    assert js.do("delete", [entry["dlqId"]], target="dlq") == {"deleted": 1}
    assert js.do("list", target="dlq")["messages"] == []


def test_a_plan_limit_on_a_step_is_a_412_that_fails_the_run(
    js: JsApp, virtual: Emulator, destination: Destination
) -> None:
    run_id = js.do(
        "trigger", {"url": js.url + "/quota", "body": {"url": destination.url + "/api"}}
    )["workflowRunId"]
    virtual.run_until_idle()

    ((failure,),) = [js.results("quota")]
    assert (failure["runId"], failure["failStatus"]) == (run_id, 489)
    assert "Upstash-Retries" in failure["failResponse"]
    assert destination.received == []
    assert logged(js, run_id)["workflowState"] == "RUN_FAILED"


def test_a_history_past_the_size_limit_is_fetched_by_the_sdk() -> None:
    """Lazy fetch: the delivery is empty and the SDK reads the run from the server."""
    with Emulator(clock=VirtualClock(), max_message_size=2_048) as small:
        app = JsApp(small)
        try:
            payload = {"n": 1, "padding": "x" * 1_400}
            run_id = app.do("trigger", {"url": app.url + "/steps", "body": payload})[
                "workflowRunId"
            ]
            small.run_until_idle()
            assert [r["b"] for r in app.results("steps")] == [4]
            steps = [a for a in small.attempts if a.url == app.url + "/steps"]
            # The first delivery's history still fits; the steps' results make it too large.
            assert [a.request.body == b"" for a in steps] == [False, True, True]
            assert all(a.status == 200 for a in steps)
            assert logged(app, run_id)["workflowState"] == "RUN_SUCCESS"
            assert request(small, "GET", f"/v2/workflows/runs/{run_id}").status_code == 404
        finally:
            app.stop()


def test_a_call_is_retried_and_only_its_last_answer_is_the_result(
    js: JsApp, virtual: Emulator, destination: Destination
) -> None:
    destination.script("/flaky", (500, {}, b"down"), (502, {}, b"down"))
    run_id = js.do(
        "trigger",
        {"url": js.url + "/call", "body": {"url": destination.url + "/flaky", "retries": 2}},
    )["workflowRunId"]
    virtual.run_until_idle()

    assert js.results("call") == [{"runId": run_id, "status": 200, "body": "ok"}]
    assert [r.status for r in destination.received] == [500, 502, 200]
    # A callback after every attempt; the SDK passes over those that will be retried.
    callbacks = [a for a in virtual.attempts if a.kind == "callback"]
    assert [json.loads(c.request.body)["status"] for c in callbacks] == [500, 502, 200]
    assert [json.loads(c.request.body)["retried"] for c in callbacks] == [0, 1, 2]
    run = logged(js, run_id)
    assert run["workflowState"] == "RUN_SUCCESS"
    assert [n for _, names in step_names(run) for n in names] == ["init", "third party"]


def test_a_failure_function_call_in_progress_can_be_stopped(js: JsApp, virtual: Emulator) -> None:
    js.http.post("/_do/flags", json={"failureFails": True})
    run_id = js.do("trigger", {"url": js.url + "/resumable", "body": {}, "retries": 3})[
        "workflowRunId"
    ]
    # The step's retries (at 12 s, 160 s and 1,968 s), then the failure call's first two tries.
    virtual.run_until_idle(max_seconds=2_000)
    (entry,) = js.do("list", target="dlq")["messages"]
    assert entry["failureCallbackInfo"]["state"] == "CALLBACK_INPROGRESS"  # it is retrying
    tries = len(js.results("resumable-failure"))

    stopped = request(virtual, "DELETE", f"/v2/workflows/dlq/callback/{entry['dlqId']}")
    assert stopped.status_code == 200, stopped.text
    virtual.run_until_idle()

    assert len(js.results("resumable-failure")) == tries
    (entry,) = js.do("list", target="dlq")["messages"]
    assert entry["failureCallbackInfo"]["state"] == "CALLBACK_CANCELED"
    again = request(virtual, "DELETE", f"/v2/workflows/dlq/callback/{entry['dlqId']}")
    assert again.status_code == 400
    assert logged(js, run_id)["failureFunction"]["state"] == "CALLBACK_CANCELED"
    js.do("delete", [entry["dlqId"]], target="dlq")


def test_retry_after_from_a_step_sets_the_next_attempt(js: JsApp, virtual: Emulator) -> None:
    run_id = js.do("trigger", {"url": js.url + "/retry-after", "body": {}})["workflowRunId"]
    virtual.run_until_idle()

    busy = [a for a in virtual.attempts if a.url == js.url + "/retry-after" and a.status == 429]
    assert [a.next_delay_ms for a in busy] == [30_000]
    assert logged(js, run_id)["workflowState"] == "RUN_SUCCESS"
    assert len(js.results("retry-after-attempts")) == 2
