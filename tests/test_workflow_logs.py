"""Workflow logs (qstash_emulator/workflows/_logs.py): every filter, paging, trimming, and the
event view, over runs made with plain REST calls (what the SDKs send), on the virtual clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qstash_emulator import Emulator

from .helpers import Destination, api


def _step(step_id: int, name: str, out: Any) -> bytes:
    return json.dumps(
        {
            "stepId": step_id,
            "stepName": name,
            "stepType": "Run",
            "out": json.dumps(out),
            "concurrent": 1,
        }
    ).encode()


class Runs:
    def __init__(self, emulator: Emulator, destination: Destination) -> None:
        self.emulator = emulator
        self.dest = destination.url
        self.http = api(emulator)

    def publish(self, path: str, run_id: str, body: bytes, init: bool, **headers: str) -> str:
        r = self.http.post(
            f"/v2/publish/{self.dest}{path}",
            headers={
                "Upstash-Workflow-RunId": run_id,
                "Upstash-Workflow-Init": "true" if init else "false",
                **headers,
            },
            content=body,
        )
        assert r.status_code == 200, r.text
        message_id: str = r.json()["messageId"]
        return message_id

    def logs(self, path: str = "/v2/workflows/logs", **params: Any) -> dict[str, Any]:
        r = self.http.get(path, params=params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def ids(self, **params: Any) -> list[tuple[str, int]]:
        return [
            (r["workflowRunId"], r["workflowRunCreatedAt"]) for r in self.logs(**params)["runs"]
        ]


@pytest.fixture
def runs(virtual: Emulator, destination: Destination) -> Any:
    """A ends with a result; B is left running with a step an hour away; C reuses A's id and
    is cancelled. Each a second after the one before."""
    made = Runs(virtual, destination)
    t0 = virtual.clock.now_ms()
    made.publish(
        "/a",
        "wfr_a",
        b'{"order": 1}',
        True,
        **{
            "Upstash-Label": "blue",
            "Upstash-Flow-Control-Key": "k1",
            "Upstash-Flow-Control-Value": "parallelism=2",
        },
    )
    made.step_a = made.publish("/a", "wfr_a", _step(1, "first", "one"), False)
    made.publish("/a", "wfr_a", _step(2, "second", {"n": 2}), False)
    virtual.run_until_idle()
    assert (
        made.http.request(
            "DELETE", "/v2/workflows/runs/wfr_a?cancel=false", content=b'"done"'
        ).status_code
        == 200
    )
    virtual.clock.advance(1)
    made.publish("/b", "wfr_b", b"payload-b", True, **{"Upstash-Label": "red"})
    virtual.wait_idle()
    made.publish("/b", "wfr_b", _step(1, "later", None), False, **{"Upstash-Delay": "1h"})
    virtual.clock.advance(1)
    made.publish("/a", "wfr_a", b"{}", True)
    virtual.wait_idle()
    assert made.http.delete("/v2/workflows/runs/wfr_a").status_code == 200
    made.t = (t0, t0 + 1_000, t0 + 2_000)
    yield made
    made.http.close()


def test_every_filter_selects_its_runs(runs: Any) -> None:
    t0, t1, t2 = runs.t
    a, b, c = ("wfr_a", t0), ("wfr_b", t1), ("wfr_a", t2)
    assert runs.ids() == [c, b, a]
    assert runs.ids(workflowRunId="wfr_a") == [c, a]
    assert runs.ids(workflowRunId="wfr_a", workflowCreatedAt=t0) == [a]
    assert runs.ids(workflowRuns=f"wfr_a@{t0},wfr_b@{t1}", label="nope") == [b, a]
    assert runs.ids(workflowUrl=runs.dest + "/a") == [c, a]
    assert runs.ids(workflowUrl=runs.dest) == []  # exact, not a prefix
    assert runs.ids(state="RUN_SUCCESS") == [a]
    assert runs.ids(state="RUN_CANCELED") == [c]
    assert runs.ids(state="RUN_STARTED") == [b]
    assert runs.ids(state="STEP_PROGRESS") == [b]
    assert runs.ids(label="red") == [b]
    assert runs.ids(fromDate=t1) == [c, b]
    assert runs.ids(toDate=t1) == [b, a]
    assert runs.ids(flowControlKey="k1") == [a]
    assert runs.ids(callerIp="127.0.0.1") == [c, b, a]
    assert runs.ids(callerIP="127.0.0.1") == [c, b, a]  # the older spelling, as /v2/logs
    assert runs.ids(callerIP="10.9.9.9") == []
    assert runs.ids(messageId=runs.step_a) == [a]


def test_pages_follow_the_cursor_to_an_empty_one(runs: Any) -> None:
    seen, cursor = [], None
    for _ in range(4):
        page = runs.logs(count=1, **({"cursor": cursor} if cursor else {}))
        seen += [r["workflowRunId"] for r in page["runs"]]
        cursor = page["cursor"]
        if not cursor:
            break
    assert seen == ["wfr_a", "wfr_b", "wfr_a"]
    assert cursor == ""
    # Run mode gives at most 10 a page, whatever count asks.
    assert len(runs.logs(count=1000)["runs"]) == 3


def test_a_run_shows_its_steps_response_and_pending_messages(runs: Any) -> None:
    t0, _, _ = runs.t
    (a,) = runs.logs(workflowRunId="wfr_a", workflowCreatedAt=t0)["runs"]
    assert a["workflowState"] == "RUN_SUCCESS"
    assert a["workflowRunResponse"] == '"done"'
    assert (a["label"], a["flowControlKey"]) == ("blue", "k1")
    assert [g["type"] for g in a["steps"]] == ["sequential"] * 3
    init, first, second = (g["steps"][0] for g in a["steps"])
    assert (init["stepName"], init["stepType"], init["out"]) == ("init", "Initial", '{"order": 1}')
    assert (first["stepId"], first["stepName"], first["out"], first["state"]) == (
        1,
        "first",
        '"one"',
        "STEP_SUCCESS",
    )
    assert first["messageId"] == runs.step_a
    assert second["out"] == '{"n": 2}'
    (b,) = runs.logs(workflowRunId="wfr_b")["runs"]
    (pending,) = b["steps"][-1]["steps"]
    assert b["steps"][-1]["type"] == "next"
    assert (pending["state"], pending["retries"]) == ("STEP_PROGRESS", 0)


def test_trim_body_cuts_or_drops_the_outputs(runs: Any) -> None:
    t0, _, _ = runs.t
    (cut,) = runs.logs(workflowRunId="wfr_a", workflowCreatedAt=t0, trimBody=3)["runs"]
    assert [s["steps"][0]["out"] for s in cut["steps"]] == ['{"o', '"on', '{"n']
    (dropped,) = runs.logs(workflowRunId="wfr_a", workflowCreatedAt=t0, trimBody=-1)["runs"]
    assert [s["steps"][0].get("out") for s in dropped["steps"]] == [None, None, None]


def test_events_without_group_by_are_one_per_state_change(runs: Any) -> None:
    t0, t1, t2 = runs.t
    page = runs.logs("/v2/workflows/events", workflowRunId="wfr_a", workflowCreatedAt=t0)
    assert sorted(e["state"] for e in page["events"]) == [
        "RUN_STARTED",
        "RUN_SUCCESS",
        "STEP_SUCCESS",
        "STEP_SUCCESS",
        "STEP_SUCCESS",
    ]
    started = runs.logs("/v2/workflows/events", state="RUN_STARTED")["events"]
    assert [(e["workflowRunId"], e["time"]) for e in started] == [
        ("wfr_a", t2),
        ("wfr_b", t1),
        ("wfr_a", t0),
    ]
    first = runs.logs("/v2/workflows/events", count=2)
    assert len(first["events"]) == 2 and first["cursor"]
    rest = runs.logs("/v2/workflows/events", cursor=first["cursor"], count=100)
    assert rest["cursor"] == ""
    grouped = runs.logs("/v2/workflows/events", groupBy="workflowRunId")
    assert [r["workflowRunId"] for r in grouped["runs"]] == ["wfr_a", "wfr_b", "wfr_a"]


def test_the_triggers_settings_apply_to_the_steps_that_give_none(runs: Any) -> None:
    rows = runs.logs("/v2/logs", messageId=runs.step_a)["logs"]
    assert rows and all(r["flowControlKey"] == "k1" for r in rows)
    assert all(r["labels"] == ["blue"] for r in rows)


def test_bulk_cancel_takes_a_url_prefix_or_an_exact_url(runs: Any) -> None:
    cancel = runs.http.delete
    exact = {"workflowUrl": runs.dest, "workflowUrlExactMatch": "true"}
    assert cancel("/v2/workflows/runs", params=exact).json() == {"cancelled": 0}
    assert cancel("/v2/workflows/runs", params={"label": "blue"}).json() == {"cancelled": 0}
    assert cancel("/v2/workflows/runs", params={"workflowUrl": runs.dest}).json() == {
        "cancelled": 1
    }
    assert runs.ids(state="RUN_STARTED") == []
    (b,) = runs.logs(workflowRunId="wfr_b")["runs"]
    assert b["workflowState"] == "RUN_CANCELED"
    assert [s["state"] for s in b["steps"][-1]["steps"]] == ["STEP_CANCELED"]


def test_the_triggers_redaction_hides_bodies_and_headers_in_the_run_logs(
    virtual: Emulator, destination: Destination
) -> None:
    made = Runs(virtual, destination)
    try:
        made.publish(
            "/r",
            "wfr_r",
            b'{"card": "4242"}',
            True,
            **{"Upstash-Redact-Fields": "body,header[X-Secret]", "Upstash-Forward-X-Secret": "s"},
        )
        made.publish("/r", "wfr_r", _step(1, "charge", "ok"), False)
        virtual.run_until_idle()
        (run,) = made.logs(workflowRunId="wfr_r")["runs"]
    finally:
        made.http.close()
    init, charge = (g["steps"][0] for g in run["steps"])
    assert init["out"].startswith("REDACTED:") and "4242" not in init["out"]
    assert charge["out"].startswith("REDACTED:")
    assert init["headers"]["X-Secret"][0].startswith("REDACTED:")
