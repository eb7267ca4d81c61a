"""SIGKILL at random points, on the real-Redis backend: nothing accepted is ever lost.

While messages are delayed, queued, in flight, retrying, dead-lettering and coming from a
schedule, the emulator is killed (``kill -9``) several times at random moments and
restarted. Afterwards every accepted message has been delivered or dead-lettered, and a
message was delivered twice only when a kill fell between its two deliveries (at least once,
never more than that).

The seed is printed; ``QSTASH_EMULATOR_CRASH_SEED=<seed>`` replays a run's kill points.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import pytest

from .helpers import Destination, EmulatorProcess, Received, auth, wait_until

KILLS = 3
HOLD_S = 1.0  # how long an "in flight" delivery keeps the emulator waiting


@dataclass
class Run:
    """What one crash run accepted, and when it killed."""

    accepted: dict[str, str] = field(default_factory=dict)  # message id -> kind
    kills: list[float] = field(default_factory=list)  # time.monotonic() of each SIGKILL
    schedule_id: str = "crash-schedule"
    states: Counter[str] = field(default_factory=Counter)  # waiting states, last looked at


def _held() -> tuple[int, dict[str, str], bytes]:
    time.sleep(HOLD_S)
    return 200, {}, b"held"


def _slow() -> tuple[int, dict[str, str], bytes]:
    time.sleep(0.3)
    return 200, {}, b"queued"


def _publish(emu: EmulatorProcess, run: Run, kind: str, path: str, **headers: str) -> None:
    r = httpx.post(f"{emu.url}{path}", headers={**emu.auth, **headers}, content=kind.encode())
    assert r.status_code == 200, r.text
    run.accepted[r.json()["messageId"]] = kind


def _load(emu: EmulatorProcess, run: Run, destination: Destination, round_: int) -> None:
    """One round of every kind of work, published while the emulator is up."""
    d = destination.url
    for i in range(3):
        tag = f"{round_}-{i}"
        destination.script(f"/inflight/{tag}", _held)  # type: ignore[arg-type]
        destination.script(f"/flaky/{tag}", (500, {}, b""), (503, {}, b""))
        destination.script(f"/doomed/{tag}", *[(500, {}, b"no")] * 10)
        _publish(emu, run, "now", f"/v2/publish/{d}/now/{tag}")
        _publish(
            emu, run, "inflight", f"/v2/publish/{d}/inflight/{tag}", **{"Upstash-Retries": "1"}
        )
        _publish(
            emu, run, "delayed", f"/v2/publish/{d}/delayed/{tag}", **{"Upstash-Delay": f"{i + 1}s"}
        )
        _publish(
            emu,
            run,
            "retrying",
            f"/v2/publish/{d}/flaky/{tag}",
            **{"Upstash-Retries": "5", "Upstash-Retry-Delay": "1000"},
        )
        _publish(
            emu,
            run,
            "doomed",
            f"/v2/publish/{d}/doomed/{tag}",
            **{"Upstash-Retries": "1", "Upstash-Retry-Delay": "400"},
        )
    for i in range(6):
        tag = f"{round_}-{i}"
        destination.script(f"/queued/{tag}", _slow)  # type: ignore[arg-type]
        _publish(emu, run, "queued", f"/v2/enqueue/crash-queue/{d}/queued/{tag}")
    r = httpx.post(f"{emu.url}/_emulator/run-now/{run.schedule_id}", headers=emu.auth)
    assert r.status_code == 200, r.text


def _states(emu: EmulatorProcess) -> Counter[str]:
    r = httpx.get(f"{emu.url}/_emulator/messages", headers=emu.auth)
    return Counter(m["state"] for m in r.json()["messages"])


def _busy(emu: EmulatorProcess, run: Run) -> bool:
    run.states = _states(emu)
    return {"delayed", "in_flight", "retrying", "queued"} <= set(run.states)


def _schedule_messages(emu: EmulatorProcess, run: Run) -> set[str]:
    r = httpx.get(
        f"{emu.url}/v2/logs",
        params={"scheduleId": run.schedule_id, "state": "CREATED", "count": 1000},
        headers=emu.auth,
    )
    return {row["messageId"] for row in r.json()["logs"]}


def _successes(destination: Destination) -> dict[str, list[Received]]:
    got: dict[str, list[Received]] = {}
    for received in list(destination.received):
        if received.status == 200 and "upstash-message-id" in received.headers:
            got.setdefault(received.headers["upstash-message-id"], []).append(received)
    return got


@pytest.mark.slow
@pytest.mark.redis
def test_random_sigkills_lose_nothing(redis_url: str, destination: Destination) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    seed = int(os.environ.get("QSTASH_EMULATOR_CRASH_SEED", random.randrange(2**32)))
    print(f"crash seed {seed}")
    chance = random.Random(seed)
    run = Run()
    seen: Counter[str] = Counter()

    emu = EmulatorProcess("--redis-url", redis_url)
    try:
        r = httpx.post(
            f"{emu.url}/v2/schedules/{destination.url}/scheduled",
            headers={
                **emu.auth,
                "Upstash-Cron": "* * * * *",
                "Upstash-Schedule-Id": run.schedule_id,
            },
        )
        assert r.status_code == 200, r.text
        for round_ in range(KILLS):
            _load(emu, run, destination, round_)
            # In the thick of it: once every kind of work is under way, at a random moment.
            wait_until(
                partial(_busy, emu, run),
                timeout=10,
                what=f"all kinds of work under way in {run.states}",
            )
            time.sleep(chance.uniform(0, 0.3))
            seen.update(_states(emu))
            emu.kill()
            run.kills.append(time.monotonic())
            emu = EmulatorProcess("--redis-url", redis_url)
    except BaseException:
        emu.kill()
        raise

    try:
        scheduled: set[str] = set()
        dead: dict[str, int] = {}

        def settled() -> bool:
            scheduled.update(_schedule_messages(emu, run))
            ok = _successes(destination)
            r = httpx.get(f"{emu.url}/v2/dlq", params={"count": 100}, headers=emu.auth)
            dead.clear()
            dead.update(Counter(m["messageId"] for m in r.json()["messages"]))
            everything = set(run.accepted) | scheduled
            return all(m in ok or m in dead for m in everything)

        try:
            wait_until(settled, timeout=45, what="every message delivered or dead-lettered")
        except AssertionError:
            ok = _successes(destination)
            lost = {
                m: run.accepted.get(m, "scheduled")
                for m in set(run.accepted) | scheduled
                if m not in ok and m not in dead
            }
            waiting = httpx.get(f"{emu.url}/_emulator/messages", headers=emu.auth).json()
            raise AssertionError(f"lost {lost}; the emulator says {waiting}") from None
        ok = _successes(destination)
        doomed = {m for m, kind in run.accepted.items() if kind == "doomed"}
        assert set(dead) == doomed, "only the doomed are dead letters"
        assert all(m in ok for m in set(run.accepted) - doomed)
        assert len(scheduled) >= KILLS
        assert {"delayed", "in_flight", "retrying", "queued"} <= set(seen), seen

        # At least once, never more: two successes of one message have a kill between them.
        duplicates = 0
        for message_id, times in ok.items():
            for first, second in zip(times, times[1:], strict=False):
                duplicates += 1
                assert any(first.at < k < second.at for k in run.kills), (
                    f"{message_id} ({run.accepted.get(message_id)}) delivered twice in one life"
                )
        dead_duplicates = sum(count - 1 for count in dead.values())
        # The schedule is still there, and still running after the crashes.
        sched = httpx.get(f"{emu.url}/v2/schedules/{run.schedule_id}", headers=emu.auth).json()
        assert sched["isPaused"] is False and sched["nextScheduleTime"] > time.time() * 1000
        print(
            f"crash: {KILLS} SIGKILLs with {dict(seen)} waiting, "
            f"{len(run.accepted) + len(scheduled)} messages accepted, 0 lost, "
            f"{duplicates} duplicate deliveries, {dead_duplicates} duplicate dead letters"
        )
    finally:
        emu.stop()


@pytest.mark.redis
@pytest.mark.parametrize("cut", ["before-finished", "inside-finished"])
def test_a_kill_between_final_state_and_queue_release_frees_the_slot(
    redis_url: str, destination: Destination, cut: str
) -> None:
    """The writes that end a queue message (its final state, then its place, then its slot)
    are not one transaction; a kill between them must not block the queue for ever."""
    import redis

    from qstash_emulator import Emulator
    from qstash_emulator.model.message import State

    redis.Redis.from_url(redis_url).flushdb()
    with Emulator(redis_url=redis_url) as first:
        creds = auth(first)
        httpx.post(f"{first.url}/v2/queues", headers=creds, json={"queueName": "q", "paused": True})
        ids = [
            httpx.post(f"{first.url}/v2/enqueue/q/{destination.url}/q{i}", headers=creds).json()[
                "messageId"
            ]
            for i in range(2)
        ]
        # Internal: the crash is simulated between two store writes.
        store = first.runtime.store
        keyspace = store.keyspace

        async def crash_after_final_state() -> None:
            # Where the engine was when the kill came: the first message started, delivered...
            await store.redis.sadd(keyspace.queue("defaultUser", "q", "active"), ids[0])
            await store.redis.zrem(keyspace.queue("defaultUser", "q", "ready"), ids[0])
            msg = await store.get(ids[0])
            assert msg is not None
            msg.state, msg.final_at = State.DELIVERED, first.clock.now_ms()
            await store.finish(msg, [], 60_000)
            if cut == "inside-finished":  # ... and out of line, but still holding its slot.
                await store.redis.zrem(keyspace.queue("defaultUser", "q", "members"), ids[0])

        first.call(crash_after_final_state())
    with Emulator(redis_url=redis_url) as second:
        creds = auth(second)
        assert httpx.post(f"{second.url}/v2/queues/q/resume", headers=creds).status_code == 200
        (got,) = destination.wait(1, "/q1")
        assert got.headers["upstash-message-id"] == ids[1]
        # The request arrives before the emulator has its answer: q1 counts until it is final.
        wait_until(
            lambda: httpx.get(f"{second.url}/v2/queues/q", headers=creds).json()["lag"] == 0,
            what="the queue's lag to drop to 0 once q1 is delivered",
        )
        second.reset()


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["callback", "failure-callback"])
def test_a_kill_right_after_the_final_state_keeps_the_callbacks(
    redis_url: str, destination: Destination, kind: str
) -> None:
    """The message's final write is its last: its callbacks were stored before it."""
    import redis

    from qstash_emulator import Emulator

    redis.Redis.from_url(redis_url).flushdb()
    destination.script("/down", (500, {}, b"no"))
    with Emulator(redis_url=redis_url) as first:
        # Internal: the crash is simulated right after a store write.
        store = first.runtime.store
        real_finish = store.finish
        finished = threading.Event()

        async def finish_then_die(*args: Any, **kwargs: Any) -> None:
            await real_finish(*args, **kwargs)
            finished.set()
            raise asyncio.CancelledError  # the process is gone: nothing after this runs

        store.finish = finish_then_die  # type: ignore[method-assign]
        headers = {**auth(first), "Upstash-Retries": "0"}
        if kind == "callback":
            path, headers["Upstash-Callback"] = "/ok", f"{destination.url}/cb"
        else:
            path, headers["Upstash-Failure-Callback"] = "/down", f"{destination.url}/cb"
        r = httpx.post(f"{first.url}/v2/publish/{destination.url}{path}", headers=headers)
        assert r.status_code == 200, r.text
        assert finished.wait(10)
        store.finish = real_finish  # type: ignore[method-assign]
    with Emulator(redis_url=redis_url) as second:
        (got,) = destination.wait(1, "/cb")
        assert got.headers["content-type"] == "application/json"
        second.reset()
