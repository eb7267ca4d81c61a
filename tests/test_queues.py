"""Queues and enqueue through the official SDK: FIFO, parallelism, pause.

The rules: docs/behaviour.md#queues.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from qstash import QStash
from qstash.errors import QStashError
from qstash.queue import Queue

from qstash_emulator import Emulator

from .helpers import Destination, Reply, auth, sdk, wait_until


def _enqueue(emu: Emulator, queue: str, url: str, body: str, **headers: str) -> str:
    r = httpx.post(
        f"{emu.url}/v2/enqueue/{queue}/{url}",
        headers={**auth(emu), **headers},
        content=body.encode(),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["messageId"])


def _order(emu: Emulator) -> list[tuple[str, str]]:
    """(message id, outcome) of every attempt, in the order they started."""
    attempts = sorted(emu.attempts, key=lambda a: (a.started_at, a.wall_started))
    return [(a.message_id, a.outcome) for a in attempts]


# Management ---------------------------------------------------------------------------------


def test_upsert_get_list_and_the_exact_shape(emulator: Emulator, client: QStash) -> None:
    client.queue.upsert("jobs", parallelism=2)
    queue = client.queue.get("jobs")
    assert queue == Queue(
        name="jobs",
        parallelism=2,
        created_at=queue.created_at,
        updated_at=queue.created_at,
        lag=0,
        paused=False,
    )
    assert client.queue.list() == [queue]
    raw = httpx.get(f"{emulator.url}/v2/queues/jobs", headers=auth(emulator))
    assert raw.json() == {
        "name": "jobs",
        "parallelism": 2,
        "createdAt": queue.created_at,
        "updatedAt": queue.updated_at,
        "lag": 0,
        "paused": False,
    }
    client.queue.upsert("jobs", parallelism=1, paused=True)
    changed = client.queue.get("jobs")
    assert (changed.parallelism, changed.paused, changed.created_at) == (1, True, queue.created_at)
    assert changed.updated_at >= queue.updated_at


def test_upsert_answers_200_with_an_empty_body(emulator: Emulator) -> None:
    r = httpx.post(
        f"{emulator.url}/v2/queues",
        headers=auth(emulator),
        json={"queueName": "q", "parallelism": 1, "paused": False},
    )
    assert (r.status_code, r.content) == (200, b"")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"queueName": "bad name"}, 400, "queueName"),
        ({"parallelism": 1}, 400, "queueName"),
        ({"queueName": "q", "parallelism": 0}, 400, "parallelism"),
        ({"queueName": "q", "parallelism": "2"}, 400, "parallelism"),
        ({"queueName": "q", "paused": "yes"}, 400, "paused"),
        ({"queueName": "q", "parallelism": 11}, 412, "parallelism"),
        (["q"], 400, "body"),
    ],
)
def test_bad_upserts(emulator: Emulator, body: Any, status: int, field: str) -> None:
    r = httpx.post(f"{emulator.url}/v2/queues", headers=auth(emulator), json=body)
    assert r.status_code == status, r.text
    assert field in r.json()["error"]


def test_get_pause_resume_of_a_missing_queue_is_404(emulator: Emulator, client: QStash) -> None:
    for call in (client.queue.get, client.queue.pause, client.queue.resume):
        with pytest.raises(QStashError, match="404"):
            call("ghost")


def test_delete_queue(emulator: Emulator, client: QStash) -> None:
    client.queue.upsert("gone")
    client.queue.delete("gone")
    client.queue.delete("gone")
    assert client.queue.list() == []


def test_queue_count_and_parallelism_quotas_are_412() -> None:
    with Emulator(quota="free") as free, sdk(free) as client:
        for i in range(10):
            client.queue.upsert(f"q{i}")
        with pytest.raises(QStashError, match="412"):
            client.queue.upsert("q10")
        with pytest.raises(QStashError, match="412"):
            client.message.enqueue(queue="q10", url="http://127.0.0.1:9/x", body="b")
        client.queue.upsert("q0", parallelism=2)  # an existing queue may change at the limit
        with pytest.raises(QStashError, match="412"):
            client.queue.upsert("q1", parallelism=3)
        assert len(client.queue.list()) == 10


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_concurrent_creations_keep_to_the_plans_queue_limit(backend: str, request: Any) -> None:
    redis_url = None
    if backend == "redis":
        import redis

        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()
    with Emulator(quota="free", redis_url=redis_url) as free:

        async def burst() -> list[int]:
            async with httpx.AsyncClient(base_url=free.url, headers=auth(free)) as http:
                enqueues = [
                    http.post(f"/v2/enqueue/e{i}/http://127.0.0.1:9/x", content=b"b")
                    for i in range(12)
                ]
                upserts = [http.post("/v2/queues", json={"queueName": f"u{i}"}) for i in range(12)]
                answers = await asyncio.gather(*enqueues, *upserts)
                return [r.status_code for r in answers]

        statuses = asyncio.run(burst())
        assert sorted(set(statuses)) == [200, 412]
        assert statuses.count(200) == 10  # free: 10 queues
        names = [q["name"] for q in httpx.get(f"{free.url}/v2/queues", headers=auth(free)).json()]
        assert len(names) == 10


def test_queues_are_per_user(emulator: Emulator, client: QStash) -> None:
    client.queue.upsert("mine")
    with sdk(emulator, emulator.create_user().token) as theirs:
        assert theirs.queue.list() == []
        with pytest.raises(QStashError, match="404"):
            theirs.queue.get("mine")


# Enqueue ------------------------------------------------------------------------------------


def test_enqueue_creates_the_queue_and_delivers(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    res = client.message.enqueue_json(
        queue="auto", url=destination.url + "/e", body={"a": 1}, headers={"X-Trace": "t"}
    )
    (got,) = destination.wait(1, "/e")
    assert got.body == b'{"a": 1}'
    assert got.headers["x-trace"] == "t"
    assert got.headers["upstash-message-id"] == res.message_id  # type: ignore[union-attr]
    queue = client.queue.get("auto")
    assert (queue.parallelism, queue.paused) == (1, False)
    wait_until(lambda: client.queue.get("auto").lag == 0, what="lag back to 0")
    message = client.message.get(res.message_id)  # type: ignore[union-attr]
    assert message.queue == "auto"
    rows = httpx.get(
        f"{emulator.url}/v2/events",
        params={"queueName": "auto", "order": "earliestFirst"},
        headers=auth(emulator),
    ).json()["events"]
    assert [r["state"] for r in rows] == ["CREATED", "ACTIVE", "DELIVERED"]
    assert {r["queueName"] for r in rows} == {"auto"}


def test_enqueue_raw_response_and_dedup(emulator: Emulator) -> None:
    url = "http://127.0.0.1:9/later"
    headers = {**auth(emulator), "Upstash-Deduplication-Id": "d1", "Upstash-Delay": "1h"}
    first = httpx.post(f"{emulator.url}/v2/enqueue/dq/{url}", headers=headers, content=b"x")
    assert first.status_code == 200
    assert first.json() == {"messageId": first.json()["messageId"], "url": url}
    again = httpx.post(f"{emulator.url}/v2/enqueue/dq/{url}", headers=headers, content=b"x")
    assert again.status_code == 202
    assert again.json() == {**first.json(), "deduplicated": True}


def test_enqueue_to_a_url_group_fans_out_in_the_queue(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    client.url_group.upsert_endpoints(
        "grp", [{"url": destination.url + "/g1"}, {"url": destination.url + "/g2"}]
    )
    res = client.message.enqueue(queue="gq", url_group="grp", body="x")
    assert isinstance(res, list)
    assert [r.url for r in res] == [destination.url + "/g1", destination.url + "/g2"]
    got = destination.wait(2)
    assert {r.headers["upstash-topic-name"] for r in got} == {"grp"}
    assert [r.path for r in got] == ["/g1", "/g2"]  # parallelism 1: in order


@pytest.mark.parametrize(
    ("path", "headers", "status", "field"),
    [
        ("/v2/enqueue/bad%20name/http://127.0.0.1:9/x", {}, 400, "queueName"),
        ("/v2/enqueue/q/ftp://x", {}, 404, "ftp://x"),
        ("/v2/enqueue/q/http://127.0.0.1:9/x", {"Upstash-Retries": "x"}, 400, "Upstash-Retries"),
    ],
)
def test_bad_enqueues(
    emulator: Emulator, path: str, headers: dict[str, str], status: int, field: str
) -> None:
    r = httpx.post(f"{emulator.url}{path}", headers={**auth(emulator), **headers})
    assert r.status_code == status, r.text
    assert field in r.json()["error"]
    assert httpx.get(f"{emulator.url}/v2/queues", headers=auth(emulator)).json() == []


# Ordering and parallelism -------------------------------------------------------------------


def test_fifo_next_message_waits_for_the_retries_of_the_first(
    virtual: Emulator, destination: Destination
) -> None:
    destination.script("/first", (500, {}, b"down"), (500, {}, b"down"))
    first = _enqueue(virtual, "fifo", destination.url + "/first", "1")
    second = _enqueue(virtual, "fifo", destination.url + "/second", "2")
    third = _enqueue(virtual, "fifo", destination.url + "/third", "3")
    virtual.run_until_idle()
    assert _order(virtual) == [
        (first, "retry"),
        (first, "retry"),
        (first, "delivered"),
        (second, "delivered"),
        (third, "delivered"),
    ]
    by_id = {a.message_id: a for a in virtual.attempts}
    # The second starts only after the first's last retry (12 s + 148 s of default backoff).
    assert by_id[second].started_at - virtual.attempts[0].started_at == (12182 + 148413)


def test_fifo_holds_for_callbacks_and_failure_callbacks(
    virtual: Emulator, destination: Destination
) -> None:
    destination.script("/cb", (500, {}, b""))  # the first callback fails once, retried in 12 s
    destination.script("/doomed", (500, {}, b""))
    a = _enqueue(
        virtual, "cbq", destination.url + "/a", "a", **{"Upstash-Callback": destination.url + "/cb"}
    )
    b = _enqueue(
        virtual,
        "cbq",
        destination.url + "/doomed",
        "b",
        **{"Upstash-Retries": "0", "Upstash-Failure-Callback": destination.url + "/fcb"},
    )
    c = _enqueue(virtual, "cbq", destination.url + "/c", "c")
    virtual.run_until_idle()
    order = [
        (a_.kind, a_.message_id if a_.kind == "message" else a_.source_message_id, a_.outcome)
        for a_ in sorted(virtual.attempts, key=lambda x: (x.started_at, x.wall_started))
    ]
    assert order == [
        ("message", a, "delivered"),
        ("callback", a, "retry"),
        ("callback", a, "delivered"),
        ("message", b, "failed"),
        ("failure_callback", b, "delivered"),
        ("message", c, "delivered"),
    ]
    cb_queues = {x.queue_name for x in virtual.attempts}
    assert cb_queues == {"cbq"}


def test_delayed_message_joins_the_line_when_its_delay_is_over(
    virtual: Emulator, destination: Destination
) -> None:
    start = virtual.clock.now_ms()
    late = _enqueue(virtual, "dl", destination.url + "/late", "l", **{"Upstash-Delay": "60s"})
    assert httpx.get(f"{virtual.url}/v2/queues/dl", headers=auth(virtual)).json()["lag"] == 1
    now = _enqueue(virtual, "dl", destination.url + "/now", "n")
    virtual.run_until_idle()
    assert [(a.message_id, a.started_at - start) for a in virtual.attempts] == [
        (now, 0),
        (late, 60_000),
    ]


def test_parallelism_bounds_messages_in_flight(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    release = threading.Event()
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def hold() -> Reply:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        release.wait(10)
        with lock:
            state["now"] -= 1
        return 200, {}, b"ok"

    destination.script("/hold", *[hold] * 5)  # type: ignore[arg-type]
    client.queue.upsert("par", parallelism=2)
    ids = [_enqueue(emulator, "par", destination.url + "/hold", str(i)) for i in range(5)]
    first_two = destination.wait(2, "/hold")
    # The first two in line take the two slots; both run at once, so which request reaches
    # the destination first is not the queue's to say (one claim may take both).
    assert sorted(r.body for r in first_two) == [b"0", b"1"]
    # The other three are parked by the queue: not due, not in flight.
    parked = [emulator.call(emulator.inspector.one(emulator.user.user_id, i)) for i in ids[2:]]
    assert [(w.state, w.due) if w else None for w in parked] == [("queued", None)] * 3
    assert client.queue.get("par").lag == 5
    release.set()
    got = destination.wait(5, "/hold")
    assert sorted(r.body for r in got) == [b"0", b"1", b"2", b"3", b"4"]
    wait_until(lambda: client.queue.get("par").lag == 0, what="queue drained")
    # Should this fail, the bodies received and the attempts in start order say whether a
    # third message started early or one message was sent twice.
    received = [r.body for r in destination.received if r.path == "/hold"]
    assert state["max"] == 2, (received, _order(emulator))
    assert len(received) == 5, (received, _order(emulator))


def test_raising_parallelism_starts_waiting_messages(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    release = threading.Event()

    def hold() -> Reply:
        release.wait(10)
        return 200, {}, b"ok"

    destination.script("/slow", *[hold] * 3)  # type: ignore[arg-type]
    for i in range(3):
        _enqueue(emulator, "grow", destination.url + "/slow", str(i))
    destination.wait(1, "/slow")
    client.queue.upsert("grow", parallelism=3)
    destination.wait(3, "/slow")
    release.set()
    wait_until(lambda: client.queue.get("grow").lag == 0, what="queue drained")


# Pause, resume, delete ----------------------------------------------------------------------


def test_paused_queue_accepts_but_delivers_nothing_until_resumed(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    vclient.queue.upsert("p", paused=True)
    ids = [_enqueue(virtual, "p", destination.url + f"/p{i}", str(i)) for i in range(3)]
    virtual.run_until_idle()
    assert virtual.attempts == []
    queue = vclient.queue.get("p")
    assert (queue.paused, queue.lag) == (True, 3)
    vclient.queue.pause("p")  # idempotent
    vclient.queue.resume("p")
    vclient.queue.resume("p")
    virtual.run_until_idle()
    assert [a.message_id for a in virtual.attempts] == ids
    assert [r.path for r in destination.received] == ["/p0", "/p1", "/p2"]
    assert vclient.queue.get("p").lag == 0


def test_pausing_lets_the_active_message_finish_its_retries(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    destination.script("/r", (500, {}, b""))
    first = _enqueue(virtual, "pr", destination.url + "/r", "1")
    second = _enqueue(virtual, "pr", destination.url + "/s", "2")
    virtual.wait_idle()
    vclient.queue.pause("pr")
    virtual.run_until_idle()
    assert _order(virtual) == [(first, "retry"), (first, "delivered")]
    vclient.queue.resume("pr")
    virtual.run_until_idle()
    assert _order(virtual)[-1] == (second, "delivered")


def test_deleting_a_queue_cancels_its_waiting_messages(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    vclient.queue.upsert("del", paused=True)
    ids = [_enqueue(virtual, "del", destination.url + "/d", str(i)) for i in range(2)]
    vclient.queue.delete("del")
    with pytest.raises(QStashError, match="404"):
        vclient.queue.get("del")
    virtual.run_until_idle()
    assert virtual.attempts == []
    rows = httpx.get(
        f"{virtual.url}/v2/events",
        params={"queueName": "del", "state": "CANCELED"},
        headers=auth(virtual),
    ).json()["events"]
    assert sorted(r["messageId"] for r in rows) == sorted(ids)
    # Enqueueing again re-creates the queue, unpaused.
    again = _enqueue(virtual, "del", destination.url + "/d", "new")
    virtual.run_until_idle()
    assert [a.message_id for a in virtual.attempts] == [again]


def test_cancelling_a_waiting_message_lets_the_line_move(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    vclient.queue.upsert("cx", paused=True)
    first = _enqueue(virtual, "cx", destination.url + "/1", "1")
    second = _enqueue(virtual, "cx", destination.url + "/2", "2")
    vclient.message.cancel(first)
    assert vclient.queue.get("cx").lag == 1
    vclient.queue.resume("cx")
    virtual.run_until_idle()
    assert [a.message_id for a in virtual.attempts] == [second]


def test_dlq_retry_of_a_queue_message_goes_back_through_the_queue(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    destination.script("/dead", (500, {}, b""))
    dead = _enqueue(virtual, "rq", destination.url + "/dead", "x", **{"Upstash-Retries": "0"})
    virtual.run_until_idle()
    (entry,) = vclient.dlq.list().messages
    assert entry.message_id == dead and entry.queue == "rq"
    vclient.queue.pause("rq")
    r = httpx.post(f"{virtual.url}/v2/dlq/retry/{entry.dlq_id}", headers=auth(virtual))
    new_id = r.json()["messageId"]
    virtual.run_until_idle()
    assert [a.message_id for a in virtual.attempts] == [dead]
    assert vclient.queue.get("rq").lag == 1
    vclient.queue.resume("rq")
    virtual.run_until_idle()
    assert [a.message_id for a in virtual.attempts] == [dead, new_id]


# Restarts -----------------------------------------------------------------------------------


@pytest.mark.redis
def test_queue_state_and_line_survive_a_restart(redis_url: str, destination: Destination) -> None:
    """Paused, delayed and in-flight queue messages all resume in order on a real Redis."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    release = threading.Event()

    def hold() -> Reply:
        release.wait(10)
        return 200, {}, b"late"

    destination.script("/held", hold)  # type: ignore[arg-type]
    with Emulator(redis_url=redis_url) as first, sdk(first) as client:
        client.queue.upsert("waits", paused=True)
        parked = [_enqueue(first, "waits", destination.url + f"/w{i}", str(i)) for i in range(2)]
        held = _enqueue(first, "busy", destination.url + "/held", "h")
        after = _enqueue(first, "busy", destination.url + "/after", "a")
        destination.wait(1, "/held")
    release.set()  # the first emulator is gone: its attempt at /held never completed
    with Emulator(redis_url=redis_url) as second, sdk(second) as client:
        queue = client.queue.get("waits")
        assert (queue.paused, queue.lag) == (True, 2)
        got = destination.wait(3)
        assert [r.path for r in got[1:]] == ["/held", "/after"]
        assert [r.headers["upstash-message-id"] for r in got] == [held, held, after]
        client.queue.resume("waits")
        tail = destination.wait(5)[3:]
        assert [r.headers["upstash-message-id"] for r in tail] == parked
        wait_until(lambda: client.queue.get("busy").lag == 0, what="busy drained")
        second.reset()


@pytest.mark.redis
def test_a_restart_starts_messages_a_lost_pump_left_waiting(
    redis_url: str, destination: Destination
) -> None:
    """A crash between freeing a slot and starting the next message strands nothing."""
    import json

    import redis

    raw = redis.Redis.from_url(redis_url)
    raw.flushdb()
    with Emulator(redis_url=redis_url) as first, sdk(first) as client:
        client.queue.upsert("stuck", paused=True)
        ids = [_enqueue(first, "stuck", destination.url + f"/s{i}", str(i)) for i in range(2)]
        user = first.user.user_id
    # As if the emulator died right after the queue was resumed, before it started anything.
    key = f"qe:u:{user}:queues"
    config = json.loads(raw.hget(key, "stuck") or b"{}")
    raw.hset(key, "stuck", json.dumps({**config, "paused": False}))
    with Emulator(redis_url=redis_url) as second:
        got = destination.wait(2)
        assert [r.headers["upstash-message-id"] for r in got] == ids
        second.reset()
