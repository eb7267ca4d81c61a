"""An idle server on the real clock: every change that creates or moves a due time wakes the
engine, with no other traffic to do it (docs/behaviour.md#delivery). The virtual clock hides
this class of bug: each of its moves wakes the engine."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

import httpx
import pytest

from qstash_emulator import Emulator

from .helpers import Destination, auth, wait_until


def _call(emu: Emulator, method: str, path: str, **headers: str) -> httpx.Response:
    r = httpx.request(
        method,
        emu.url + path,
        headers={**auth(emu), **headers},
        content=b"x",
    )
    assert r.status_code in (200, 201, 204), (path, r.status_code, r.text)
    return r


def _asleep(emu: Emulator, until_woken: bool = False) -> None:
    """Wait until the engine sleeps with nothing due for a while (only a write can wake it
    sooner); one turn first, so that it forgets a time it had planned for what is gone (a
    paused schedule)."""
    # Internal: when the engine sleeps has no public surface (the wake-up rule).
    engine = emu.runtime.engine
    engine.notify()

    def asleep() -> bool:
        wakes_at = engine.wakes_at
        return wakes_at is None or (not until_woken and wakes_at > emu.clock.now_ms() + 10_000)

    wait_until(asleep, 5, "an idle engine")


def _schedule(emu: Emulator, destination: str, cron: str, **headers: str) -> dict[str, Any]:
    created = _call(
        emu, "POST", f"/v2/schedules/{destination}", **{"Upstash-Cron": cron}, **headers
    )
    schedule_id = created.json()["scheduleId"]
    found: dict[str, Any] = _call(emu, "GET", f"/v2/schedules/{schedule_id}").json()
    return found


def _wakes_for(emu: Emulator, when_ms: int) -> None:
    # Internal: when the engine wakes has no public surface (the wake-up rule).
    engine = emu.runtime.engine
    wait_until(lambda: engine.wakes_at == when_ms, 2, f"the engine to wake at {when_ms}")


def test_a_new_schedule_wakes_the_engine_at_its_first_run(
    emulator: Emulator, destination: Destination
) -> None:
    _asleep(emulator, until_woken=True)
    schedule = _schedule(emulator, destination.url + "/s", "* * * * *")
    _wakes_for(emulator, schedule["nextScheduleTime"])


def test_a_replaced_schedule_moves_the_wake_up_earlier(
    emulator: Emulator, destination: Destination
) -> None:
    yearly = _schedule(emulator, destination.url + "/s", "0 0 1 1 *")
    _wakes_for(emulator, yearly["nextScheduleTime"])
    minutely = _schedule(
        emulator,
        destination.url + "/s",
        "* * * * *",
        **{"Upstash-Schedule-Id": yearly["scheduleId"]},
    )
    _wakes_for(emulator, minutely["nextScheduleTime"])


def test_a_resumed_schedule_wakes_the_engine(emulator: Emulator, destination: Destination) -> None:
    schedule = _schedule(emulator, destination.url + "/s", "* * * * *")
    _call(emulator, "PATCH", f"/v2/schedules/{schedule['scheduleId']}/pause")
    _asleep(emulator, until_woken=True)
    _call(emulator, "PATCH", f"/v2/schedules/{schedule['scheduleId']}/resume")
    resumed = _call(emulator, "GET", f"/v2/schedules/{schedule['scheduleId']}").json()
    _wakes_for(emulator, resumed["nextScheduleTime"])


def test_run_now_delivers_a_schedule_and_a_delayed_message(
    emulator: Emulator, destination: Destination
) -> None:
    schedule = _schedule(emulator, destination.url + "/run", "0 0 1 1 *")
    delayed = _call(
        emulator, "POST", f"/v2/publish/{destination.url}/late", **{"Upstash-Delay": "1h"}
    )
    _asleep(emulator)
    for item in (schedule["scheduleId"], delayed.json()["messageId"]):
        _call(emulator, "POST", f"/_emulator/run-now/{item}")
    destination.wait(1, "/run", timeout=3)
    destination.wait(1, "/late", timeout=3)


def test_a_delayed_queue_message_is_delivered_when_its_delay_ends(
    emulator: Emulator, destination: Destination
) -> None:
    _asleep(emulator)
    sent = time.monotonic()
    _call(emulator, "POST", f"/v2/enqueue/q/{destination.url}/late", **{"Upstash-Delay": "1s"})
    (got,) = destination.wait(1, "/late", timeout=4)
    assert got.at - sent >= 0.9


@pytest.mark.parametrize("taken_off", ["queue deleted", "message cancelled"])
def test_a_due_time_taken_off_leaves_the_engine_asleep(
    emulator: Emulator, destination: Destination, taken_off: str
) -> None:
    """The next due time (of a message, of a queue's delayed member) is kept in memory; one
    taken off leaves it early, and once that time has passed the engine looks once and sleeps
    until woken, instead of turning again and again for it."""
    _asleep(emulator)
    if taken_off == "queue deleted":
        _call(emulator, "POST", f"/v2/enqueue/q/{destination.url}/gone", **{"Upstash-Delay": "1s"})
        _call(emulator, "DELETE", "/v2/queues/q")
    else:
        sent = _call(
            emulator, "POST", f"/v2/publish/{destination.url}/gone", **{"Upstash-Delay": "1s"}
        )
        _call(emulator, "DELETE", f"/v2/messages/{sent.json()['messageId']}")
    passed = time.monotonic() + 1.2
    # Internal: when the engine sleeps has no public surface (the wake-up rule).
    engine = emulator.runtime.engine
    wait_until(lambda: time.monotonic() > passed and engine.wakes_at is None, 5, "an engine asleep")
    assert destination.received == []


def test_a_resumed_queue_delivers(emulator: Emulator, destination: Destination) -> None:
    r = httpx.post(
        emulator.url + "/v2/queues",
        headers=auth(emulator),
        json={"queueName": "q", "paused": True},
    )
    assert r.status_code == 200, r.text
    _call(emulator, "POST", f"/v2/enqueue/q/{destination.url}/held")
    _asleep(emulator)
    assert destination.received == []
    _call(emulator, "POST", "/v2/queues/q/resume")
    destination.wait(1, "/held", timeout=3)


def _flow(emu: Emulator, url: str, value: str) -> None:
    headers = {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": value}
    _call(emu, "POST", f"/v2/publish/{url}", **headers)


def test_a_flow_control_rate_window_opens_on_time(
    emulator: Emulator, destination: Destination
) -> None:
    sent = time.monotonic()
    for i in range(2):
        _flow(emulator, f"{destination.url}/r{i}", "rate=1,period=1s")
    first, second = sorted(destination.wait(2, timeout=4), key=lambda r: r.at)
    assert second.at - sent >= 0.9 and first.at - sent < 0.9


@pytest.mark.parametrize("release", ["resume", "unpin", "reset"])
def test_a_flow_control_change_releases_its_waiters(
    emulator: Emulator, destination: Destination, release: str
) -> None:
    if release == "resume":
        _call(emulator, "POST", "/v2/flowControl/k/pause")
        _flow(emulator, f"{destination.url}/w", "parallelism=1")
    else:
        # The key is pinned to one dispatch an hour; the window holds the second message.
        _call(emulator, "POST", "/v2/flowControl/k/pin?rate=1&period=3600")
        _flow(emulator, f"{destination.url}/first", "rate=100")
        destination.wait(1, "/first", timeout=3)
        _flow(emulator, f"{destination.url}/w", "rate=100")
    _asleep(emulator)
    assert [r.path for r in destination.received if r.path == "/w"] == []
    path = {"resume": "resume", "unpin": "unpin?rate=true", "reset": "resetRate"}[release]
    _call(emulator, "POST", f"/v2/flowControl/k/{path}")
    if release == "unpin":  # the next message's own config applies
        _flow(emulator, f"{destination.url}/after", "rate=100")
    destination.wait(1, "/w", timeout=3)


def test_a_dead_letter_retried_is_delivered(emulator: Emulator, destination: Destination) -> None:
    destination.script("/dlq", (500, {}, b"no"))
    _call(emulator, "POST", f"/v2/publish/{destination.url}/dlq", **{"Upstash-Retries": "0"})
    wait_until(lambda: _dead_letters(emulator), 5, "a dead letter")
    _asleep(emulator)
    (letter,) = _dead_letters(emulator)
    _call(emulator, "POST", f"/v2/dlq/retry/{letter['dlqId']}")
    destination.wait(2, "/dlq", timeout=3)


def _dead_letters(emu: Emulator) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = _call(emu, "GET", "/v2/dlq").json()["messages"]
    return found


def test_a_retry_after_a_failure_is_sent_on_time(
    emulator: Emulator, destination: Destination
) -> None:
    destination.script("/retry", (500, {}, b"no"))
    _call(
        emulator,
        "POST",
        f"/v2/publish/{destination.url}/retry",
        **{"Upstash-Retries": "1", "Upstash-Retry-Delay": "1000"},
    )
    first, second = destination.wait(2, "/retry", timeout=4)
    assert second.at - first.at >= 0.9


@pytest.mark.parametrize("index", ["due", "queue_wake", "schedule_due", "flow_wake", "waits"])
def test_a_due_time_written_to_any_index_wakes_the_engine(emulator: Emulator, index: str) -> None:
    """The one mechanism: a score written to a due index, through the store's batched writes,
    brings the sleeping engine's wake-up forward (and drops the timers' cached times)."""
    # Internal: a due time is written straight into each store index.
    store = emulator.runtime.store
    key = getattr(store.keyspace, index)
    member = {
        "due": "msg_none",
        "queue_wake": '["nobody","q","msg_none"]',
        "waits": "nobody\nevent\nwtr_none",
    }.get(index, "nobody\x00none")
    _asleep(emulator)
    when = emulator.clock.now_ms() + 3_600_000
    emulator.call(store.write(lambda w: w.zadd(key, member, when)))
    try:
        _wakes_for(emulator, when)
        sooner = when - 1_800_000
        emulator.call(store.write(lambda w: w.zadd(key, member, sooner)))
        _wakes_for(emulator, sooner)
    finally:
        emulator.call(store.redis.zrem(key, member))


@pytest.mark.slow
@pytest.mark.timeout(360)
def test_ten_thousand_schedules_all_fire_at_the_minute_on_an_idle_server(
    destination: Destination,
) -> None:
    """A fresh server, no other traffic: 10,000 ``* * * * *`` schedules (one of them paused
    and resumed) all run from the next minute on; their deliveries begin at that minute."""
    count = 10_000
    with Emulator(quota="pro") as emu:
        # Enough of the minute left to create them all before it ends.
        if time.time() % 60 > 30:
            time.sleep(60 - time.time() % 60 + 0.5)
        resumed = _schedule(emu, destination.url + "/tick", "* * * * *")
        # Internal: the schedules are written to the store in bulk (ten thousand).
        runtime, user = emu.runtime, emu.user.user_id

        async def create_all() -> None:
            # Stored in one go, each as the API stores it (one create through the API costs
            # ~4 ms on a loaded machine: 40 s for all).
            schedules = runtime.schedules
            base = await schedules.get(user, resumed["scheduleId"])
            assert base is not None
            copies = [dataclasses.replace(base, id=f"scd_bulk{i}") for i in range(count - 1)]
            await asyncio.gather(*(schedules._save(copy) for copy in copies))

        emu.call(create_all(), timeout=60)
        _call(emu, "PATCH", f"/v2/schedules/{resumed['scheduleId']}/pause")
        _call(emu, "PATCH", f"/v2/schedules/{resumed['scheduleId']}/resume")
        minute = resumed["nextScheduleTime"] // 1_000
        assert time.time() < minute - 1, "created too late to test this minute"
        # Each runs from that minute on: its run is published and its next run time moves
        # to a later minute (on two cores loaded by other work ~60-170 runs a second, their
        # deliveries running alongside; so not all within the minute).
        store = runtime.store

        def fired() -> int:
            later = (minute + 60) * 1_000
            return int(emu.call(store.redis.zcount(store.keyspace.schedule_due, later, "+inf")))

        deadline = time.monotonic() + minute - time.time() + 180
        while fired() < count and time.monotonic() < deadline:
            time.sleep(1)
        assert fired() == count
        first = destination.wait(1, "/tick", timeout=30)[0]
        assert first.at >= time.monotonic() - (time.time() - minute) - 0.1


def test_a_wait_that_times_out_publishes_its_timeout_on_time(
    emulator: Emulator, destination: Destination
) -> None:
    """A workflow run's wait with a 1 s timeout, on an idle server: the timeout's message
    goes out once the second is over, with nothing else to wake the engine."""
    from .helpers import Held

    held = Held()  # the run's first step stays in flight: the run is going meanwhile
    destination.script("/wf", held)
    try:
        started = _call(emulator, "POST", f"/v2/trigger/{destination.url}/wf").json()
        assert held.entered.wait(10)
        _asleep(emulator)
        sent = time.monotonic()
        r = httpx.post(
            f"{emulator.url}/v2/wait/ev",
            headers={
                **auth(emulator),
                "Upstash-Workflow-RunId": started["workflowRunId"],
            },
            json={"url": destination.url + "/timeout", "timeout": "1s", "step": {"stepName": "w"}},
        )
        assert r.status_code == 200, r.text
        (got,) = destination.wait(1, "/timeout", timeout=5)
        assert got.at - sent >= 0.9
        assert json.loads(got.body)["waitTimeout"] is True
    finally:
        held.release.set()
