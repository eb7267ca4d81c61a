"""The workflow store (qstash_emulator/workflows/_store.py): what stays and what goes."""

from __future__ import annotations

import base64
import json

import httpx

from qstash_emulator import Emulator

from .helpers import Destination, auth

RUN = {"Upstash-Workflow-RunId": "wfr_store", "Upstash-Workflow-Init": "true"}


def _waiting_run(emulator: Emulator, token: str, destination: Destination) -> None:
    creds = auth(token)
    url = f"{emulator.url}/v2/publish/{destination.url}/wf"
    assert httpx.post(url, headers={**creds, **RUN, "Upstash-Delay": "1d"}).status_code == 200
    wait = {"url": destination.url + "/wf", "timeout": "2d", "step": {"stepName": "w"}}
    r = httpx.post(f"{emulator.url}/v2/wait/evt", headers={**creds, **RUN}, json=wait)
    assert r.status_code == 200, r.text


def test_purging_a_user_forgets_its_waiter_deadlines(
    emulator: Emulator, destination: Destination
) -> None:
    """A test's purged user must not leave a deadline that a later test's clock jumps to."""
    user = emulator.create_user()
    _waiting_run(emulator, user.token, destination)
    waits = emulator.waits
    assert emulator.call(waits.next_due()) is not None

    emulator.call(emulator.purge_user(user.user_id))

    assert emulator.call(waits.next_due()) is None
    assert emulator.call(waits.waiters(user.user_id, "evt")) == []


def test_a_run_that_ends_drops_its_waiters(emulator: Emulator, destination: Destination) -> None:
    _waiting_run(emulator, emulator.token, destination)
    user = emulator.user.user_id
    assert len(emulator.call(emulator.waits.waiters(user, "evt"))) == 1

    cancel = httpx.delete(
        f"{emulator.url}/v2/workflows/runs/wfr_store",
        headers=auth(emulator),
    )

    assert cancel.status_code == 200
    assert emulator.call(emulator.waits.waiters(user, "evt")) == []
    assert emulator.call(emulator.waits.next_due()) is None


def test_the_logs_keep_the_newest_ended_runs_up_to_the_log_retention(
    destination: Destination,
) -> None:
    with Emulator(log_retention=3) as small:
        creds = auth(small)
        for n in range(5):
            run = {"Upstash-Workflow-RunId": f"wfr_{n}", "Upstash-Workflow-Init": "true"}
            url = f"{small.url}/v2/publish/{destination.url}/wf"
            assert (
                httpx.post(url, headers={**creds, **run, "Upstash-Delay": "1d"}).status_code == 200
            )
            if n != 1:  # wfr_1 keeps running
                assert (
                    httpx.delete(
                        f"{small.url}/v2/workflows/runs/wfr_{n}", headers=creds
                    ).status_code
                    == 200
                )
        listed = httpx.get(f"{small.url}/v2/workflows/logs", headers=creds).json()["runs"]
    assert [r["workflowRunId"] for r in listed] == ["wfr_4", "wfr_3", "wfr_2", "wfr_1"]


def test_a_wait_timeout_fires_on_time_on_the_real_clock(
    emulator: Emulator, destination: Destination
) -> None:
    """The engine sleeps until the run's first message (a day away): a new waiter's earlier
    deadline must wake it."""
    creds = auth(emulator)
    url = f"{emulator.url}/v2/publish/{destination.url}/wf"
    assert httpx.post(url, headers={**creds, **RUN, "Upstash-Delay": "1d"}).status_code == 200
    wait = {
        "url": destination.url + "/wf",
        "timeout": "1s",
        "timeoutHeaders": {"Upstash-Workflow-RunId": ["wfr_store"]},  # a message of the run
        "step": {"stepName": "w"},
    }
    assert httpx.post(f"{emulator.url}/v2/wait/evt", headers={**creds, **RUN}, json=wait).is_success

    (timed_out,) = destination.wait(1, path="/wf", timeout=5)

    items = json.loads(timed_out.body)
    step = json.loads(base64.b64decode(items[-1]["body"]))
    assert (step["stepName"], step["waitEventId"], step["waitTimeout"]) == ("w", "evt", True)
