"""Delivery, retries and their timing, callbacks and dead letters (docs/behaviour.md#retries)."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qstash import Receiver

from qstash_emulator import Emulator

from .helpers import Destination, Held, auth, fake_redis, log_states, wait_until


def _post(emu: Emulator, url: str, headers: dict[str, str], body: bytes = b"job") -> str:
    r = httpx.post(
        f"{emu.url}/v2/publish/{url}",
        headers={**auth(emu), **headers},
        content=body,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["messageId"])


@contextlib.contextmanager
def _claims_only(emu: Emulator) -> Iterator[None]:
    """Messages due at once go through the due list and the engine's claim, not handed over
    as they are stored (the claim's races are raced here)."""
    # Internal: the hand-over is the store's hook to the engine.
    store = emu.runtime.store
    hand_over, store.hand_over = store.hand_over, None
    try:
        yield
    finally:
        store.hand_over = hand_over


def test_default_backoff_follows_the_documented_formula(
    virtual: Emulator, destination: Destination
) -> None:
    destination.script("/b", *[(500, {}, b"no")] * 4)
    start = virtual.clock.now_ms()
    _post(virtual, destination.url + "/b", {})
    virtual.run_until_idle()
    attempts = [a for a in virtual.attempts if a.kind == "message"]
    assert [a.retried for a in attempts] == [0, 1, 2, 3]
    offsets = [(a.started_at - start) // 1000 for a in attempts]
    # e^2.5 = 12.18 s, e^5 = 148.4 s (2 min 28 s), e^7.5 = 1808 s (30 min 8 s)
    assert offsets == [0, 12, 12 + 148, 12 + 148 + 1808]
    assert [a.next_delay_ms for a in attempts] == [12182, 148413, 1808042, None]
    assert attempts[0].delay_source == "default backoff min(86400, e^(2.5*1))s"
    assert attempts[-1].outcome == "failed"
    received = destination.wait(4, "/b")
    assert [r.headers["upstash-retried"] for r in received] == ["0", "1", "2", "3"]


def test_retry_delay_expression_sets_the_gaps(virtual: Emulator, destination: Destination) -> None:
    destination.script("/e", (500, {}, b""), (500, {}, b""), (200, {}, b"ok"))
    start = virtual.clock.now_ms()
    _post(virtual, destination.url + "/e", {"Upstash-Retry-Delay": "1000 * (1 + retried)"})
    virtual.run_until_idle()
    offsets = [a.started_at - start for a in virtual.attempts]
    assert offsets == [0, 1000, 1000 + 2000]
    assert [a.outcome for a in virtual.attempts] == ["retry", "retry", "delivered"]


def test_short_retry_delay_in_real_time(emulator: Emulator, destination: Destination) -> None:
    destination.script("/r", (503, {}, b"busy"))
    _post(emulator, destination.url + "/r", {"Upstash-Retry-Delay": "50"})
    first, second = destination.wait(2, "/r")
    assert second.at - first.at >= 0.045
    assert second.headers["upstash-retried"] == "1"


def test_retry_after_header_overrides_backoff(virtual: Emulator, destination: Destination) -> None:
    destination.script(
        "/ra", (429, {"Retry-After": "7"}, b""), (503, {"X-RateLimit-Reset": "90s"}, b"")
    )
    start = virtual.clock.now_ms()
    _post(virtual, destination.url + "/ra", {})
    virtual.run_until_idle()
    assert [a.started_at - start for a in virtual.attempts] == [0, 7000, 97000]
    assert virtual.attempts[0].delay_source == "retry-after: 7"
    assert virtual.attempts[1].delay_source == "x-ratelimit-reset: 90s"


def test_retry_after_above_a_day_is_ignored(virtual: Emulator, destination: Destination) -> None:
    destination.script("/day", (429, {"Retry-After": "90000"}, b""))
    _post(virtual, destination.url + "/day", {})
    virtual.run_until_idle()
    assert virtual.attempts[0].next_delay_ms == 12182


def test_489_non_retryable_fails_at_once(virtual: Emulator, destination: Destination) -> None:
    destination.script("/n", (489, {"Upstash-NonRetryable-Error": "true"}, b"bad input"))
    message_id = _post(virtual, destination.url + "/n", {"Upstash-Retries": "5"})
    virtual.run_until_idle()
    assert len(virtual.attempts) == 1
    assert virtual.attempts[0].outcome == "failed"
    dlq = httpx.get(f"{virtual.url}/v2/dlq", headers=auth(virtual))
    (entry,) = dlq.json()["messages"]
    assert entry["messageId"] == message_id
    assert entry["responseStatus"] == 489
    assert entry["responseBody"] == "bad input"


def test_489_without_header_is_an_ordinary_failure(
    virtual: Emulator, destination: Destination
) -> None:
    destination.script("/n2", (489, {}, b""))
    _post(virtual, destination.url + "/n2", {"Upstash-Retries": "1"})
    virtual.run_until_idle()
    assert [a.outcome for a in virtual.attempts] == ["retry", "delivered"]


def test_timeout_fails_the_attempt(emulator: Emulator, destination: Destination) -> None:
    import time

    def slow() -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.5)
        return 200, {}, b"late"

    destination.script("/slow", slow)  # type: ignore[arg-type]
    _post(emulator, destination.url + "/slow", {"Upstash-Timeout": "1s", "Upstash-Retries": "0"})
    emulator.wait_idle(timeout=10)
    (attempt,) = emulator.attempts
    assert attempt.error == "timeout after 1s"
    assert attempt.outcome == "failed"


def test_connection_refused_goes_to_dlq(virtual: Emulator) -> None:
    message_id = _post(virtual, "http://127.0.0.1:9/refused", {"Upstash-Retries": "0"})
    virtual.run_until_idle()
    (attempt,) = virtual.attempts
    assert attempt.response is None and attempt.error
    r = httpx.get(f"{virtual.url}/v2/dlq", headers=auth(virtual))
    (entry,) = r.json()["messages"]
    assert entry["messageId"] == message_id and entry["responseStatus"] == 0


def test_delay_and_not_before(virtual: Emulator, destination: Destination) -> None:
    start = virtual.clock.now_ms()
    _post(virtual, destination.url + "/d", {"Upstash-Delay": "1h30m"})
    _post(
        virtual,
        destination.url + "/nb",
        {"Upstash-Not-Before": str(start // 1000 + 60), "Upstash-Delay": "5d"},
    )
    virtual.wait_idle()
    assert virtual.attempts == []
    virtual.run_until_idle()
    by_path = {a.url.rsplit("/", 1)[1]: a.started_at for a in virtual.attempts}
    assert by_path["d"] - start == 90 * 60 * 1000
    assert by_path["nb"] == (start // 1000 + 60) * 1000


def test_callback_after_each_attempt(virtual: Emulator, destination: Destination) -> None:
    destination.script("/cb-target", (500, {"X-Why": "down"}, b"oops"), (200, {}, b"done"))
    message_id = _post(
        virtual,
        destination.url + "/cb-target",
        {
            "Upstash-Callback": destination.url + "/cb",
            "Upstash-Retries": "1",
            "Upstash-Callback-Forward-X-Cb": "1",
            "Content-Type": "text/plain",
            "Upstash-Retry-Delay": "1000",
        },
        body=b"payload",
    )
    virtual.run_until_idle()
    callbacks = destination.wait(2, "/cb")
    first, second = (json.loads(c.body) for c in callbacks)
    assert first["status"] == 500 and second["status"] == 200
    assert first["retried"] == 0 and second["retried"] == 1
    assert second["maxRetries"] == 1
    assert first["sourceMessageId"] == message_id
    assert base64.b64decode(first["body"]) == b"oops"
    assert base64.b64decode(second["sourceBody"]) == b"payload"
    assert first["header"]["X-Why"] == ["down"]
    assert first["sourceHeader"] == {"Content-Type": ["text/plain"]}
    assert first["url"] == destination.url + "/cb-target"
    assert first["method"] == "POST"
    assert isinstance(first["createdAt"], int) and isinstance(first["notBefore"], int)
    assert callbacks[0].headers["x-cb"] == "1"
    assert callbacks[0].headers["content-type"] == "application/json"
    Receiver(virtual.current_signing_key, virtual.next_signing_key).verify(
        signature=callbacks[0].headers["upstash-signature"],
        body=callbacks[0].text,
        url=destination.url + "/cb",
    )


def test_failure_callback_fires_once_with_dlq_id(
    virtual: Emulator, destination: Destination
) -> None:
    destination.script("/ff", (500, {}, b"x"), (500, {}, b"y"))
    _post(
        virtual,
        destination.url + "/ff",
        {
            "Upstash-Failure-Callback": destination.url + "/failed",
            "Upstash-Retries": "1",
            "Upstash-Failure-Callback-Forward-Upstash-Workflow-Is-Failure": "true",
        },
    )
    virtual.run_until_idle()
    (failure,) = destination.wait(1, "/failed")
    payload = json.loads(failure.body)
    assert payload["status"] == 500 and payload["retried"] == 1
    assert base64.b64decode(payload["body"]) == b"y"
    assert failure.headers["upstash-workflow-is-failure"] == "true"
    r = httpx.get(f"{virtual.url}/v2/dlq", headers=auth(virtual))
    assert payload["dlqId"] == r.json()["messages"][0]["dlqId"]


def test_callback_options_apply(virtual: Emulator, destination: Destination) -> None:
    destination.script("/cbo", (200, {}, b""))
    destination.script("/cb2", (500, {}, b""), (500, {}, b""))
    start = virtual.clock.now_ms()
    _post(
        virtual,
        destination.url + "/cbo",
        {
            "Upstash-Callback": destination.url + "/cb2",
            "Upstash-Callback-Method": "PUT",
            "Upstash-Callback-Retries": "1",
            "Upstash-Callback-Retry-Delay": "2000",
            "Upstash-Callback-Delay": "10s",
        },
    )
    virtual.run_until_idle()
    callback_attempts = [a for a in virtual.attempts if a.kind == "callback"]
    assert [a.request.method for a in callback_attempts] == ["PUT", "PUT"]
    assert [a.started_at - start for a in callback_attempts] == [10_000, 12_000]
    assert callback_attempts[-1].outcome == "failed"
    dlq = httpx.get(f"{virtual.url}/v2/dlq", headers=auth(virtual))
    assert dlq.json()["messages"] == []  # a failed callback is not a dead letter


def test_redirect_is_followed_and_signed_for_the_published_url(
    emulator: Emulator, destination: Destination
) -> None:
    destination.script("/old", (307, {"Location": "/new"}, b""))
    _post(emulator, destination.url + "/old", {})
    old, new = destination.wait(2)
    assert (old.path, new.path) == ("/old", "/new")
    Receiver(emulator.current_signing_key, emulator.next_signing_key).verify(
        signature=new.headers["upstash-signature"], body=new.text, url=destination.url + "/old"
    )


def test_wait_idle_is_not_fooled_by_a_claim_under_way(
    virtual: Emulator, destination: Destination
) -> None:
    """Claimed messages are neither due nor attempts yet; that moment is not idleness."""
    import asyncio

    # Internal: the claim is slowed down in the store to race it.
    store = virtual.runtime.store
    original = store.claim_due

    async def slow_claim(now_ms: int, limit: int, mark: object) -> tuple[list[object], object]:
        claimed, after = await original(now_ms, limit, mark)  # type: ignore[arg-type]
        if claimed:
            await asyncio.sleep(0.2)
        return claimed, after  # type: ignore[return-value]

    store.claim_due = slow_claim  # type: ignore[method-assign]
    try:
        with _claims_only(virtual):
            _post(virtual, destination.url + "/claimed", {})
            virtual.wait_idle()
        assert [a.url for a in virtual.attempts] == [destination.url + "/claimed"]
    finally:
        store.claim_due = original  # type: ignore[method-assign]


def test_a_cancel_that_races_the_claim_is_honoured(
    virtual: Emulator, destination: Destination
) -> None:
    """A cancel between the claim's read of the due list and its write counts as a cancel
    of an attempt in flight: the message ends CANCELED and is never sent."""
    import asyncio

    # Internal: the cancel is made to race the engine's claim.
    rt = virtual.runtime
    store = rt.store
    original = store.claim_due
    cancels: list[asyncio.Task[bool]] = []

    async def racing_claim(now_ms: int, limit: int, mark: object) -> tuple[list[object], object]:
        def mark_then_cancel(ids: list[str]) -> None:
            mark(ids)  # type: ignore[operator]
            for message_id in ids:

                async def cancel_it(message_id: str = message_id) -> bool:
                    msg = await store.get(message_id)
                    assert msg is not None
                    return await rt.engine.cancel(msg)

                cancels.append(asyncio.ensure_future(cancel_it()))

        return await original(now_ms, limit, mark_then_cancel)  # type: ignore[return-value]

    store.claim_due = racing_claim  # type: ignore[method-assign]
    try:
        with _claims_only(virtual):
            message_id = _post(virtual, destination.url + "/raced", {})
            virtual.wait_idle()
    finally:
        store.claim_due = original  # type: ignore[method-assign]
    assert [t.done() and t.result() for t in cancels] == [True]
    assert virtual.attempts == []
    assert log_states(virtual, message_id) == ["CREATED", "CANCEL_REQUESTED", "CANCELED"]


def test_an_outcome_is_stored_once_the_store_answers_again(
    emulator: Emulator, destination: Destination
) -> None:
    held = Held()
    destination.script("/held", held)
    message_id = _post(emulator, destination.url + "/held", {})
    server = fake_redis(emulator)
    try:
        assert held.entered.wait(10)
        server.connected = False  # the outcome's write will fail
        held.release.set()
        destination.wait(1, "/held")
        # Internal: the engine's pending outcomes have no public surface.
        engine = emulator.runtime.engine
        wait_until(
            lambda: getattr(engine, "_store_down", False), what="the outcome's write refused"
        )
        r = httpx.get(f"{emulator.url}/v2/logs", headers=auth(emulator))
        assert r.status_code == 503
    finally:
        held.release.set()
        server.connected = True

    wait_until(
        lambda: "DELIVERED" in log_states(emulator, message_id), what="the outcome to be stored"
    )
    emulator.wait_idle()
    assert len(destination.received) == 1


def test_a_claim_no_attempt_holds_is_due_again_without_a_restart(
    emulator: Emulator, destination: Destination
) -> None:
    from qstash_emulator.store.core import _CLAIMED

    message_id = _post(emulator, destination.url + "/orphan", {"Upstash-Delay": "1h"})
    # Internal: an orphan claim is written as a Redis outage would leave it.
    store = emulator.runtime.store
    # As if a claim was written but its attempt died with the store (a Redis outage).
    claimed = _CLAIMED + emulator.clock.now_ms() - 1
    emulator.call(store.redis.zadd(store.keyspace.due, {message_id: claimed}))
    (got,) = destination.wait(1, "/orphan", timeout=5)  # the sweep runs every second
    assert got.headers["upstash-message-id"] == message_id


def test_the_sweep_leaves_running_attempts_alone(
    emulator: Emulator, destination: Destination
) -> None:
    held = Held()
    destination.script("/running", held)
    _post(emulator, destination.url + "/running", {})
    try:
        assert held.entered.wait(10)
        time.sleep(0.01)  # the claim is older than the sweep's instant
        assert emulator.call(emulator.runtime.engine.return_orphans()) == 0
    finally:
        held.release.set()
    emulator.wait_idle()
    assert len(destination.wait(1, "/running")) == 1


def test_a_reset_during_a_claim_delivers_nothing_it_had_taken(
    emulator: Emulator, destination: Destination
) -> None:
    """A reset while the dispatcher is taking due messages: what it took belongs to the state
    the reset forgot, and is neither sent nor written back after it."""
    import asyncio
    import threading

    # Internal: the reset is made to race the store's claim.
    store = emulator.runtime.store
    original = store.claim_due
    taken, release = threading.Event(), threading.Event()

    async def held_claim(now_ms: int, limit: int, mark: object) -> tuple[list[object], object]:
        claimed, after = await original(now_ms, limit, mark)  # type: ignore[arg-type]
        if claimed and not release.is_set():
            taken.set()
            await asyncio.to_thread(release.wait, 10)
        return claimed, after  # type: ignore[return-value]

    store.claim_due = held_claim  # type: ignore[method-assign]
    try:
        with _claims_only(emulator):
            old = _post(emulator, destination.url + "/before", {})
            assert taken.wait(10)
            emulator.reset()
    finally:
        release.set()
        store.claim_due = original  # type: ignore[method-assign]
    new = _post(emulator, destination.url + "/after", {})
    destination.wait(1, "/after")
    emulator.wait_idle()
    assert [r.path for r in destination.received] == ["/after"]
    assert [a.message_id for a in emulator.attempts] == [new]
    assert httpx.get(f"{emulator.url}/v2/messages/{old}", headers=auth(emulator)).status_code == 404


def test_a_reset_stops_an_attempt_that_dropped_a_cancel(
    emulator: Emulator, destination: Destination
) -> None:
    """An attempt that lets one cancel go by (as Python 3.11's asyncio.wait_for does when
    what it waits for completes at that moment) is cancelled again, not waited for."""
    import asyncio
    import threading

    entered = threading.Event()

    class Stubborn:
        async def admit(self, msg: object) -> bool:
            entered.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                pass
            await asyncio.sleep(10)
            return True

        async def attempt_done(self, msg: object) -> None:
            return None

        async def finished(self, msg: object) -> None:
            return None

    gate = Stubborn()
    emulator.runtime.engine.gates.insert(0, gate)  # type: ignore[arg-type]
    try:
        _post(emulator, destination.url + "/stubborn", {})
        assert entered.wait(10)
        started = time.monotonic()
        emulator.reset()
        took = time.monotonic() - started
    finally:
        emulator.runtime.engine.gates.remove(gate)  # type: ignore[arg-type]
    assert took < 5, took
    new = _post(emulator, destination.url + "/after", {})
    destination.wait(1, "/after")
    emulator.wait_idle()
    assert [a.message_id for a in emulator.attempts] == [new]
    assert [r.path for r in destination.received] == ["/after"]


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_sweep_racing_a_claim_sends_nothing_twice(
    backend: str, request: pytest.FixtureRequest, destination: Destination
) -> None:
    """The sweep that returns abandoned claims, run while a claim is being made (hooks widen
    the window: the claim takes its time, the sweep starts, the claim is marked and written,
    then the sweep reads the claims): the claim is held, the message sent once."""
    import asyncio

    url = request.getfixturevalue("redis_url") if backend == "redis" else None
    with Emulator(redis_url=url) as emu:
        emu.reset()
        # Internal: the sweep is made to race the claim.
        engine, store = emu.runtime.engine, emu.runtime.store
        claim_due, claimed_before = store.claim_due, store.claimed_before
        written: list[asyncio.Event] = []
        sweeps: list[asyncio.Future[int]] = []

        async def racing_claim(now_ms: int, limit: int, mark: Any) -> Any:
            due = await store.next_due()
            if sweeps or due is None or due > now_ms:
                return await claim_due(now_ms, limit, mark)
            while engine.clock.now_ms() <= now_ms:  # the sweep's instant is later
                await asyncio.sleep(0.001)
            written.append(asyncio.Event())
            sweeps.append(asyncio.ensure_future(engine.return_orphans()))
            await asyncio.sleep(0)  # the sweep starts, and waits for the claim to be written
            try:
                return await claim_due(now_ms, limit, mark)
            finally:
                written[0].set()

        async def late_read(when_ms: int) -> list[str]:
            if written:
                await written[0].wait()
            return await claimed_before(when_ms)

        held = Held()
        destination.script("/once", held)
        store.claim_due = racing_claim  # type: ignore[method-assign]
        store.claimed_before = late_read  # type: ignore[method-assign]
        try:
            with _claims_only(emu):
                _post(emu, destination.url + "/once", {})
                assert held.entered.wait(10)
                wait_until(lambda: sweeps and sweeps[0].done(), 5, "the sweep")
                assert sweeps[0].result() == 0
        finally:
            held.release.set()
            store.claim_due = claim_due  # type: ignore[method-assign]
            store.claimed_before = claimed_before  # type: ignore[method-assign]
        emu.wait_idle()
        got = destination.wait(1, "/once")
        assert [r.headers["upstash-retried"] for r in got] == ["0"]
        emu.reset()


def test_what_the_first_delivery_needs_is_readied_in_the_background() -> None:
    """In a fresh interpreter, the HTTP client (kept out of start-up) is imported off the
    event loop once the server serves: the first delivery does not wait for it (it took
    0.5-1.3 s, later ones ~10 ms). Signing needs no import: PyJWT stays unloaded."""
    import subprocess
    import sys

    script = """
import sys, time
from qstash_emulator import Emulator
with Emulator() as emu:
    engine = emu.runtime.engine
    deadline = time.monotonic() + 20
    while not (engine._warming and engine._warming.done()) and time.monotonic() < deadline:
        time.sleep(0.01)
    print("aiohttp" in sys.modules, "jwt" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["True", "False"], done.stderr


def test_turns_with_nothing_due_read_nothing_from_the_store(
    emulator: Emulator, destination: Destination
) -> None:
    """The engine turns after each write and each attempt; what is due next (on the due list,
    for the queues' delayed members) is known in memory from the last read and the due times
    written since, so a turn reads only when something may be due: one read of the due list
    a message published and delivered alone (2.6 a message, 0.3 of them the queue index,
    before)."""
    # Internal: the reads of the due indexes are counted on the store's client.
    store = emulator.runtime.store
    redis = store.redis
    reads: list[str] = []

    def counting(name: str) -> Any:
        original = getattr(redis, name)

        async def read(key: str, *args: Any, **kwargs: Any) -> Any:
            reads.append(key)
            return await original(key, *args, **kwargs)

        return read

    for name in ("zrange", "zrangebyscore"):
        setattr(redis, name, counting(name))
    try:
        for sent in range(1, 11):
            _post(emulator, f"{destination.url}/one", {})
            destination.wait(sent, "/one")
    finally:
        for name in ("zrange", "zrangebyscore"):
            delattr(redis, name)
    # 29 reads before; a loaded machine adds a few (sweeps and wake-ups while a message
    # waits for a CPU), so the bound sits between the two rather than at the quiet count.
    assert reads.count(store.keyspace.due) <= 20, reads
    assert reads.count(store.keyspace.queue_wake) <= 1, reads


def test_the_request_goes_out_while_its_active_row_is_written(
    emulator: Emulator, destination: Destination, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting for the ACTIVE row to be stored before sending put a group commit (two to
    three loop turns) in front of every delivery (bench scenario 3). The row is still
    stored before the outcome's rows: the log keeps its order."""
    import asyncio
    import threading

    store = emulator.runtime.store
    writing, release = threading.Event(), threading.Event()
    append_rows = store.append_rows

    async def slow_active_rows(rows: Any) -> None:
        rows = list(rows)
        if any(row["state"] == "ACTIVE" for row in rows):
            writing.set()
            await asyncio.to_thread(release.wait, 10)
        await append_rows(rows)

    monkeypatch.setattr(store, "append_rows", slow_active_rows)
    try:
        message_id = _post(emulator, destination.url + "/now", {})
        assert writing.wait(10)
        destination.wait(1, "/now", timeout=5)  # sent while the row is still being written
    finally:
        release.set()
    emulator.wait_idle()
    r = httpx.get(f"{emulator.url}/v2/logs?messageId={message_id}", headers=auth(emulator))
    assert [row["state"] for row in r.json()["events"]] == ["DELIVERED", "ACTIVE", "CREATED"]


def _hand_over_after(emu: Emulator, step: Any) -> contextlib.AbstractContextManager[None]:
    """Inside, the engine's hand-over of messages just stored waits for ``step(messages)`` (a
    coroutine function) to end: what may run between their write landing and their attempt."""
    import asyncio

    # Internal: the hand-over is the store's hook to the engine.
    engine = emu.runtime.engine
    original = engine.handed

    def handed(messages: list[Any], ticket: int) -> None:
        async def later() -> None:
            try:
                await step(messages)
            finally:
                original(messages, ticket)

        asyncio.ensure_future(later())

    @contextlib.contextmanager
    def holding() -> Iterator[None]:
        engine.handed = handed  # type: ignore[method-assign]
        try:
            yield
        finally:
            del engine.handed

    return holding()


def test_a_message_due_at_once_is_handed_to_the_engine_claimed(
    emulator: Emulator, destination: Destination
) -> None:
    """Stored in flight (claimed as it is written) and handed to the engine in memory: no
    read of the due list and no claim write stand between a publish and its attempt."""
    # Internal: the claim's read of the due list is counted.
    store = emulator.runtime.store
    claims: list[int] = []
    claim_due = store.claim_due

    async def counted(now_ms: int, limit: int, mark: Any = None) -> Any:
        claimed, after = await claim_due(now_ms, limit, mark)
        claims.append(len(claimed))
        return claimed, after

    store.claim_due = counted  # type: ignore[method-assign]
    try:
        for sent in range(1, 6):
            _post(emulator, f"{destination.url}/now", {})
            destination.wait(sent, "/now")
        emulator.wait_idle()
    finally:
        del store.claim_due
    assert sum(claims) == 0 and len(emulator.attempts) == 5


def test_a_cancel_between_the_write_and_the_hand_over_is_honoured(
    emulator: Emulator, destination: Destination
) -> None:
    """A cancel (here of all messages) that reads the message once its write has landed,
    before the engine has it: a cancel in flight, so it ends CANCELED, never sent."""
    rt = emulator.runtime
    results: list[bool] = []

    async def cancel(messages: list[Any]) -> None:
        msg = await rt.store.get(messages[0].id)
        assert msg is not None
        results.append(await rt.engine.cancel(msg))

    with _hand_over_after(emulator, cancel):
        message_id = _post(emulator, destination.url + "/raced", {})
        emulator.wait_idle()
    assert results == [True] and emulator.attempts == [] and destination.received == []
    assert log_states(emulator, message_id) == ["CREATED", "CANCEL_REQUESTED", "CANCELED"]


def test_a_sweep_or_a_wait_for_idle_before_the_hand_over_sees_an_attempt_under_way(
    emulator: Emulator, destination: Destination
) -> None:
    """Between the write and the hand-over the message is claimed but no attempt runs yet:
    the sweep must not return it as abandoned (it would be sent twice), nor wait_idle call
    the engine idle."""
    import asyncio

    rt = emulator.runtime
    orphans: list[int] = []

    async def sweep(messages: list[Any]) -> None:
        orphans.append(await rt.engine.return_orphans())
        await asyncio.sleep(0.3)

    with _hand_over_after(emulator, sweep):
        _post(emulator, destination.url + "/once", {})
        emulator.wait_idle()
        assert [a.url for a in emulator.attempts] == [destination.url + "/once"]
    assert orphans == [0]
    assert [r.headers["upstash-retried"] for r in destination.wait(1, "/once")] == ["0"]


def test_a_reset_before_the_hand_over_delivers_nothing_it_had_taken(
    emulator: Emulator, destination: Destination
) -> None:
    """A reset between the write and the hand-over: the message belongs to the state the
    reset forgot, and is neither sent nor written back after it."""
    import asyncio
    import threading

    stored, reset = threading.Event(), threading.Event()

    async def held(messages: list[Any]) -> None:
        stored.set()
        await asyncio.to_thread(reset.wait, 10)

    with _hand_over_after(emulator, held):
        old = _post(emulator, destination.url + "/before", {})
        assert stored.wait(10)
        emulator.reset()
        reset.set()
        new = _post(emulator, destination.url + "/after", {})
        destination.wait(1, "/after")
        emulator.wait_idle()
    assert [r.path for r in destination.received] == ["/after"]
    assert [a.message_id for a in emulator.attempts] == [new]
    assert httpx.get(f"{emulator.url}/v2/messages/{old}", headers=auth(emulator)).status_code == 404


def test_a_hand_over_that_never_lands_does_not_hold_wait_idle_past_a_reset(
    emulator: Emulator,
) -> None:
    """A hand-over whose write never returns (its loop torn down mid-publish) is voided by a
    reset or a stop: wait_idle does not wait for it for ever."""
    import types

    # Internal: a hand-over is begun with no write behind it.
    engine = emulator.runtime.engine

    async def begin() -> None:
        engine.take([types.SimpleNamespace(id="msg_never_stored")])  # type: ignore[list-item]

    emulator.call(begin())
    emulator.reset()
    emulator.wait_idle(timeout=3)


def test_an_attempt_a_cancel_ends_is_recorded_as_cancelled(
    emulator: Emulator, destination: Destination
) -> None:
    """It was recorded as a retry in 0 s (``retry ... retry in 0s`` in the feed, a retry in
    ``/_emulator/attempts`` and the dashboard), with no retries left, while the message ended
    CANCELED."""
    hung = Held((200, {}, b"late"))
    destination.script("/hung", hung)
    message_id = _post(emulator, destination.url + "/hung", {"Upstash-Retries": "0"})
    url = f"{emulator.url}/_emulator/attempts"

    def attempts() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = httpx.get(
            url, params={"messageId": message_id}, headers=auth(emulator)
        ).json()["attempts"]
        return found

    try:
        assert hung.entered.wait(10)
        one = f"{emulator.url}/v2/messages/{message_id}"
        assert httpx.delete(one, headers=auth(emulator)).json() == {"cancelled": 1}
        wait_until(attempts, what="the attempt to end")
    finally:
        hung.release.set()
    dropped = "cancelled while in flight: the request was dropped"
    [attempt] = attempts()
    assert {k: attempt.get(k) for k in ("outcome", "reason", "error", "nextDelayMs")} == {
        "outcome": "cancelled",
        "reason": dropped,
        "error": dropped,
        "nextDelayMs": None,
    }
    assert [a.outcome for a in emulator.attempts if a.message_id == message_id] == ["cancelled"]
