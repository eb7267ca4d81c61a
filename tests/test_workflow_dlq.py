"""The workflow DLQ (qstash_emulator/workflows/_dlq.py): a run's settings survive resume,
restart and a failure function's retry, with plain REST calls on the virtual clock."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qstash_emulator import Emulator

from .helpers import Destination, api

# Every setting a trigger gives its run, as the trigger's headers ...
_TRIGGER = {
    "Upstash-Workflow-RunId": "wfr_settings",
    "Upstash-Workflow-Init": "true",
    "Upstash-Retries": "0",
    "Upstash-Retry-Delay": "1000",
    "Upstash-Flow-Control-Key": "fk",
    "Upstash-Flow-Control-Value": "parallelism=3",
    "Upstash-Label": "blue",
    "Upstash-Redact-Fields": "body,header[X-Secret]",
    "Upstash-Forward-X-Secret": "s3cret",
    "Upstash-Failure-Callback-Retries": "0",
}
# ... and as a log row of one of the run's messages shows it.
_SHOWN = {
    "maxRetries": 0,
    "retryDelayExpr": "1000",
    "flowControlKey": "fk",
    "label": "blue",
}


@pytest.fixture
def http(virtual: Emulator) -> Iterator[httpx.Client]:
    with api(virtual) as client:
        yield client


def _failed_run(virtual: Emulator, destination: Destination, http: httpx.Client) -> str:
    """A run whose first step and failure function both fail; its DLQ id."""
    destination.script("/wf", (500, {}, b"no"))
    destination.script("/fail", (500, {}, b"nor this"))
    r = http.post(
        f"/v2/publish/{destination.url}/wf",
        headers={**_TRIGGER, "Upstash-Failure-Callback": f"{destination.url}/fail"},
        content=b'{"card": "4242"}',
    )
    assert r.status_code == 200, r.text
    virtual.run_until_idle()
    (entry,) = http.get("/v2/workflows/dlq").json()["messages"]
    assert entry["failureCallbackInfo"]["state"] == "CALLBACK_FAIL"
    dlq_id: str = entry["dlqId"]
    return dlq_id


def _rows(http: httpx.Client, message_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = http.get("/v2/logs", params={"messageId": message_id}).json()[
        "events"
    ]
    assert rows, message_id
    return rows


def _assert_settings(row: dict[str, Any], destination: Destination) -> None:
    assert {k: row.get(k) for k in _SHOWN} == _SHOWN
    assert row["failureCallback"] == f"{destination.url}/fail"
    assert row["body"].startswith("REDACTED:")
    assert row["header"]["X-Secret"][0].startswith("REDACTED:")


@pytest.mark.parametrize("action", ["resume", "restart"])
def test_a_run_keeps_every_setting_when_resumed_or_restarted(
    virtual: Emulator, destination: Destination, http: httpx.Client, action: str
) -> None:
    dlq_id = _failed_run(virtual, destination, http)
    destination.clear()
    r = http.post(f"/v2/workflows/dlq/{action}/{dlq_id}")
    assert r.status_code == 200, r.text
    run_id = r.json()["workflowRunId"]
    virtual.run_until_idle()
    (run,) = http.get("/v2/workflows/logs", params={"workflowRunId": run_id}).json()["runs"]
    first = run["steps"][0]["steps"][0]
    (delivered,) = destination.wait(1, "/wf")
    assert delivered.headers["x-secret"] == "s3cret"
    (step,) = json.loads(delivered.body)  # the run's steps so far: its initial body
    assert base64.b64decode(step["body"]) == b'{"card": "4242"}'
    for row in _rows(http, first["messageId"]):
        _assert_settings(row, destination)
        assert "4242" not in json.dumps(row)


def test_a_failure_function_retried_keeps_the_runs_redaction(
    virtual: Emulator, destination: Destination, http: httpx.Client
) -> None:
    dlq_id = _failed_run(virtual, destination, http)
    destination.clear()
    r = http.post(f"/v2/workflows/dlq/callback/{dlq_id}")
    assert r.status_code == 200, r.text
    virtual.run_until_idle()
    (call,) = destination.wait(1, "/fail")
    payload = json.loads(call.body)
    assert payload["workflowRunId"] == "wfr_settings"
    rows = [row for row in http.get("/v2/logs").json()["events"] if row["url"].endswith("/fail")]
    assert len(rows) >= 4  # the first call and the retried one, each created and delivered
    for row in rows:
        assert row["body"].startswith("REDACTED:"), row
        assert "NDI0Mi" not in json.dumps(row)  # base64 of the run's body, "4242"
