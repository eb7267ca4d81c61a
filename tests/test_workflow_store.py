"""The workflow store (qstash_emulator/workflows/_store.py): what stays and what goes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

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


KB256 = 256 << 10


def _run_bytes(emu: Emulator) -> int:
    """Bytes the store holds under the user's workflow run keys."""
    # Internal: the bytes the store holds have no public surface (the body budget rule).
    store = emu.runtime.store

    async def count() -> int:
        total = 0
        async for key in store.redis.scan_iter(match="*:run:*", count=1_000):
            if await store.redis.type(key) == b"list":  # a run's steps
                total += sum(len(x) for x in await store.redis.lrange(key, 0, -1))
        return total

    return emu.call(count())


@pytest.fixture(params=["memory", "redis"])
def small_budget(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """An emulator keeping 768 KB of bodies, in memory and on a real Redis."""
    options: dict[str, Any] = {}
    if request.param == "redis":
        options = {"redis_url": request.getfixturevalue("redis_url"), "redis_prefix": "runs:"}
    with Emulator(body_budget=3 * KB256, **options) as emu:
        emu.reset()
        yield emu


def test_ended_runs_keep_their_bodies_within_the_body_budget(
    small_budget: Emulator, destination: Destination
) -> None:
    """4 ended runs of 2 steps returning 256 KB each: their steps held 2.7 MB in base64,
    whatever the budget; now the budget keeps the newest 768 KB and the logs show the older
    results as dropped, their steps still named."""
    emu, creds = small_budget, auth(small_budget)
    url = f"{emu.url}/v2/publish/{destination.url}/wf"
    outs = {}
    for n in range(4):
        run = {"Upstash-Workflow-RunId": f"wfr_{n}", "Upstash-Delay": "1d"}
        init = httpx.post(url, headers={**creds, **run, "Upstash-Workflow-Init": "true"})
        assert init.status_code == 200, init.text
        for step in (1, 2):
            outs[n, step] = chr(97 + n) * KB256 + str(step)
            body = {"stepId": step, "stepName": f"s{step}", "stepType": "Run"}
            body |= {"out": json.dumps(outs[n, step]), "concurrent": 1}
            sent = httpx.post(url, headers={**creds, **run}, json=body)
            assert sent.status_code == 200, sent.text
        done = httpx.request(
            "DELETE",
            f"{emu.url}/v2/workflows/runs/wfr_{n}",
            params={"cancel": "false"} if n % 2 else {},
            headers=creds,
            content=b'"done"',
        )
        assert done.status_code == 200, done.text
    kept = _run_bytes(emu)
    assert kept < 64 << 10, f"{kept / KB256:.1f} x 256 KB under the run keys"
    logs = httpx.get(f"{emu.url}/v2/workflows/logs", headers=creds).json()["runs"]
    by_id = {r["workflowRunId"]: r for r in logs}
    assert [by_id[f"wfr_{n}"]["workflowState"] for n in range(4)] == [
        "RUN_CANCELED",
        "RUN_SUCCESS",
    ] * 2
    newest = [g["steps"][0] for g in by_id["wfr_3"]["steps"][1:] if g["type"] != "next"]
    assert [(s["stepName"], json.loads(s["out"])) for s in newest] == [
        ("s1", outs[3, 1]),
        ("s2", outs[3, 2]),
    ]
    oldest = [g["steps"][0] for g in by_id["wfr_0"]["steps"][1:] if g["type"] != "next"]
    assert [(s["stepName"], s.get("outDropped"), "out" in s) for s in oldest] == [
        ("s1", True, False),
        ("s2", True, False),
    ]


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
