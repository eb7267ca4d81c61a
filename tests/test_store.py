"""The store on a real Redis: state survives the emulator, even a SIGKILL mid-work."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest

from qstash_emulator import Emulator
from qstash_emulator.store.core import Store
from qstash_emulator.store.keyspace import SCHEMA

from .helpers import Destination, EmulatorProcess, auth, wait_until


@pytest.mark.redis
def test_state_and_keys_live_in_redis(redis_url: str, destination: Destination) -> None:
    with Emulator(redis_url=redis_url) as first:
        first.reset()
        creds = auth(first)
        r = httpx.post(
            f"{first.url}/v2/publish/{destination.url}/later",
            headers={**creds, "Upstash-Delay": "1h"},
            content=b"kept",
        )
        message_id = r.json()["messageId"]
        rotated = httpx.post(f"{first.url}/v2/keys/rotate", headers=creds).json()
    with Emulator(redis_url=redis_url) as second:
        creds = auth(second)
        got = httpx.get(f"{second.url}/v2/messages/{message_id}", headers=creds).json()
        assert got["body"] == "kept"
        assert httpx.get(f"{second.url}/v2/keys", headers=creds).json() == rotated
        second.reset()


@pytest.mark.redis
def test_in_flight_messages_of_an_older_emulator_are_delivered_after_an_upgrade(
    redis_url: str, destination: Destination
) -> None:
    """Key layout 1 (no ``schema`` key) kept the ids in flight in their own ``inflight`` key."""
    import redis

    with Emulator(redis_url=redis_url) as old:
        old.reset()
        r = httpx.post(
            f"{old.url}/v2/publish/{destination.url}/upgraded",
            headers={**auth(old), "Upstash-Delay": "1h"},
            content=b"in flight at the upgrade",
        )
        message_id = r.json()["messageId"]
        prefix = old.settings.redis_prefix
    direct = redis.Redis.from_url(redis_url)
    try:
        # What the older layout held for a message in flight when the process died.
        direct.delete(prefix + "schema")
        direct.zrem(prefix + "due", message_id)
        direct.zadd(prefix + "inflight", {message_id: 1})
        with Emulator(redis_url=redis_url) as upgraded:
            (got,) = destination.wait(1, "/upgraded")
            assert got.headers["upstash-message-id"] == message_id
            assert got.body == b"in flight at the upgrade"
            assert direct.exists(prefix + "inflight") == 0
            assert direct.get(prefix + "schema") == str(SCHEMA).encode()
            upgraded.reset()
    finally:
        direct.close()


@pytest.mark.redis
def test_a_store_with_a_newer_key_layout_is_left_alone(redis_url: str) -> None:
    """An emulator does not start on a layout it does not know, and changes nothing there."""
    import redis

    with Emulator(redis_url=redis_url) as first:
        first.reset()
        prefix = first.settings.redis_prefix
    direct = redis.Redis.from_url(redis_url)
    try:
        direct.set(prefix + "schema", SCHEMA + 1)
        direct.zadd(prefix + "inflight", {"msg_from_the_future": 1})
        with pytest.raises(RuntimeError, match="did not start"):
            Emulator(redis_url=redis_url).start()
        assert direct.get(prefix + "schema") == str(SCHEMA + 1).encode()
        assert direct.zcard(prefix + "inflight") == 1
    finally:
        direct.delete(prefix + "schema", prefix + "inflight")
        direct.close()


@pytest.mark.slow  # a crash run: two emulator processes, a SIGKILL, real delays (8 s)
@pytest.mark.redis
def test_sigkill_mid_work_loses_nothing(redis_url: str, destination: Destination) -> None:
    """Delayed, retrying, in-flight and dead-lettering messages all complete after a restart."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    holding = {"release": False}

    def hold() -> tuple[int, dict[str, str], bytes]:
        deadline = time.monotonic() + 10
        while not holding["release"] and time.monotonic() < deadline:
            time.sleep(0.01)
        return 200, {}, b"late"

    destination.script("/inflight", *[hold] * 5)  # type: ignore[arg-type]
    destination.script("/retrying", *[(500, {}, b"")] * 10)
    destination.script("/doomed", *[(500, {}, b"")] * 10)

    emulator = EmulatorProcess("--redis-url", redis_url)
    try:
        accepted: dict[str, str] = {}

        def publish(path: str, count: int, **headers: str) -> None:
            for i in range(count):
                r = httpx.post(
                    f"{emulator.url}/v2/publish/{destination.url}{path}",
                    headers={**emulator.auth, **headers},
                    content=f"{path}-{i}".encode(),
                )
                assert r.status_code == 200, r.text
                accepted[r.json()["messageId"]] = path

        publish("/inflight", 5, **{"Upstash-Retries": "0"})
        publish("/delayed", 10, **{"Upstash-Delay": "2s"})
        publish("/retrying", 5, **{"Upstash-Retries": "3", "Upstash-Retry-Delay": "700"})
        publish("/doomed", 5, **{"Upstash-Retries": "1", "Upstash-Retry-Delay": "700"})
        publish("/now", 10)
        destination.wait(5, "/inflight")
        destination.wait(5, "/retrying")
    except BaseException:
        emulator.kill()
        raise
    emulator.kill()
    killed_at = time.monotonic()
    holding["release"] = True  # the held requests answer into a dead connection

    restarted = EmulatorProcess("--redis-url", redis_url)
    try:
        ok: Counter[str] = Counter()
        dead: set[str] = set()

        def settled() -> bool:
            ok.clear()
            for received in list(destination.received):
                if received.status == 200:
                    ok[received.headers["upstash-message-id"]] += 1
            r = httpx.get(f"{restarted.url}/v2/dlq", headers=restarted.auth)
            dead.clear()
            dead.update(m["messageId"] for m in r.json()["messages"])
            return all(ok[m] or m in dead for m in accepted)

        wait_until(settled, timeout=20, what="every accepted message delivered or dead-lettered")
        assert {m for m, path in accepted.items() if path == "/doomed"} <= dead
        assert all(ok[m] for m, path in accepted.items() if path in ("/now", "/delayed"))
        # At-least-once: a message is delivered twice only when its first success was in
        # flight at the kill (the emulator never heard the answer), and never more than that.
        for message_id, count in ok.items():
            if count > 1:
                times = [
                    r.at
                    for r in destination.received
                    if r.headers["upstash-message-id"] == message_id and r.status == 200
                ]
                assert count == 2 and times[0] < killed_at < times[1], accepted[message_id]
    finally:
        restarted.stop()


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_more_concurrent_requests_than_pool_connections(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Past the connection pool's size, requests wait for a connection instead of failing."""
    import asyncio

    import aiohttp

    url = request.getfixturevalue("redis_url") if backend == "redis" else None
    with Emulator(redis_url=url) as emu:
        emu.reset()

        async def burst() -> list[int]:
            async with aiohttp.ClientSession(
                headers={**auth(emu), "Upstash-Delay": "1h"}
            ) as session:

                async def one(i: int) -> int:
                    async with session.post(
                        f"{emu.url}/v2/publish/http://127.0.0.1:9/{i}", data=b"x"
                    ) as resp:
                        return resp.status

                return await asyncio.gather(*(one(i) for i in range(300)))

        assert asyncio.run(burst()) == [200] * 300
        emu.reset()


def test_in_memory_store_drops_expired_keys_without_being_asked() -> None:
    """fakeredis keeps an expired key until something touches it or counts the keys; expired
    deduplication ids are never touched again, so the store's upkeep counts them. Watched by
    the memory the values hold (counting the keys here would drop them itself)."""
    import asyncio
    import tracemalloc

    from qstash_emulator.store.core import Store

    async def scenario() -> tuple[int, int]:
        store = Store.connect(None)
        await store.start()
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            for i in range(200):
                await store.redis.set(f"{store.keyspace.prefix}d:{i}", b"x" * 50_000, px=20)
            held = tracemalloc.get_traced_memory()[0] - start
            await asyncio.sleep(1.5)
            return held, tracemalloc.get_traced_memory()[0] - start
        finally:
            tracemalloc.stop()
            await store.close()

    held, left = asyncio.run(scenario())
    assert held > 9_000_000  # the 200 values of 50 KB are in memory ...
    assert left < 1_000_000, left  # ... and gone once expired, though nothing touched them


def test_a_finished_message_is_deleted_once_its_grace_is_over() -> None:
    import asyncio

    from qstash_emulator.delivery.engine import make_row
    from qstash_emulator.model.message import Message, State
    from qstash_emulator.model.options import PublishOptions
    from qstash_emulator.store.core import Store

    async def scenario() -> tuple[bool, float]:
        store = Store.connect(None)
        await store.start()
        try:
            msg = Message(
                id="msg_done",
                user="u",
                url="https://e.x/",
                created_at=1,
                not_before=1,
                due=1,
                options=PublishOptions(retries=0),
            )
            await store.add([msg], [make_row(msg, State.CREATED, 1)])
            msg.state, msg.final_at = State.DELIVERED, 2
            started = asyncio.get_running_loop().time()
            await store.finish(msg, [make_row(msg, State.DELIVERED, 2)], 300)
            kept = await store.get("msg_done") is not None
            while await store.redis.exists(store.keyspace.message("msg_done")):
                assert asyncio.get_running_loop().time() - started < 5, "never deleted"
                await asyncio.sleep(0.02)
            assert await store.redis.zcard(store.keyspace.finished) == 0
            return kept, asyncio.get_running_loop().time() - started
        finally:
            await store.close()

    kept, took = asyncio.run(scenario())
    assert kept
    assert 0.3 <= took < 1.5, took


def test_a_pending_message_costs_its_size_in_memory() -> None:
    """What the in-memory store keeps per message is about its body, record and log row: a
    stored value that drags a larger buffer along (orjson's output) shows up at once."""
    import asyncio
    import os
    import tracemalloc

    from qstash_emulator.delivery.engine import make_row
    from qstash_emulator.model.message import Message
    from qstash_emulator.model.options import PublishOptions
    from qstash_emulator.store.core import Store

    body = os.urandom(1024)

    async def main() -> float:
        store = Store.connect(None)

        async def add(i: int) -> None:
            m = Message(
                id=f"msg_{i:022d}",
                user="u",
                url="https://example.com/jobs",
                created_at=1,
                not_before=86_400_001,
                due=86_400_001,
                options=PublishOptions(
                    retries=3, header={"Content-Type": ["application/octet-stream"]}
                ),
                body=bytes(body),
                caller_ip="127.0.0.1",
            )
            await store.add([m], [make_row(m, "CREATED", 1)])

        await asyncio.gather(*(add(i) for i in range(50)))  # warm: pools, command tables
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for start in range(1_000, 3_000, 50):
                await asyncio.gather(*(add(i) for i in range(start, start + 50)))
            return (tracemalloc.get_traced_memory()[0] - before) / 2_000
        finally:
            tracemalloc.stop()
            await store.close()

    per_message = asyncio.run(main())
    # 1,057 B body + ~400 B record + ~1,900 B log row (body in base64) + keys and indexes.
    assert per_message < 4_500, per_message


def test_a_purged_user_leaves_nothing_in_the_shared_indexes(destination: Destination) -> None:
    """Purging a user deletes its keys and its members of the indexes every user shares
    (schedule run times, delayed queue members, flow-control keys with waiters); another
    user's stay."""
    from qstash_emulator import VirtualClock

    with Emulator(clock=VirtualClock()) as emu:
        gone, kept = emu.create_user(), emu.create_user()
        for user in (gone, kept):
            creds = auth(user)

            def post(path: str, **headers: str) -> None:
                r = httpx.post(emu.url + path, headers={**creds, **headers})  # noqa: B023
                assert r.status_code < 300, r.text

            post(f"/v2/schedules/{destination.url}/s", **{"Upstash-Cron": "0 0 * * *"})
            post(f"/v2/enqueue/q/{destination.url}/q", **{"Upstash-Delay": "1h"})
            post("/v2/flowControl/k/pause")
            post(
                f"/v2/publish/{destination.url}/f",
                **{"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": "rate=1"},
            )
        emu.wait_idle()
        # Internal: the shared indexes have no public surface.
        store = emu.runtime.store
        shared = (
            store.keyspace.schedule_due,
            store.keyspace.queue_wake,
            store.keyspace.flow_wake,
        )

        async def members() -> list[bytes]:
            found = []
            for key in shared:
                found += await store.redis.zrange(key, 0, -1)
            return found

        async def user_keys(user: str) -> list[bytes]:
            return [k async for k in store.redis.scan_iter(match=f"*{user}*")]

        before = emu.call(members())
        assert sum(gone.user_id.encode() in m for m in before) == 3
        emu.call(emu.purge_user(gone.user_id))
        after = emu.call(members())
        assert [m for m in after if gone.user_id.encode() in m] == []
        assert sum(kept.user_id.encode() in m for m in after) == 3
        assert emu.call(user_keys(gone.user_id)) == []
        assert emu.call(user_keys(kept.user_id)) != []


# Options as key layout 2 stored them: fields of the record's own.
_OPTIONS = {
    "Upstash-Method": "PUT",
    "Upstash-Retries": "0",
    "Upstash-Retry-Delay": "1000",
    "Upstash-Timeout": "30s",
    "Upstash-Label": "a,b",
    "Upstash-Redact-Fields": "header[X-A]",
    "Upstash-Forward-X-A": "1",
    "Upstash-Flow-Control-Key": "k",
    "Upstash-Flow-Control-Value": "parallelism=2, rate=5, period=1m",
    "Upstash-Callback": "http://127.0.0.1:9/cb",
    "Upstash-Failure-Callback": "http://127.0.0.1:9/f",
}


def _layout_2(record: dict[str, Any]) -> dict[str, Any]:
    """A message record as an emulator of key layout 2 wrote it."""
    options = record.pop("options")
    record["max_retries"] = options.pop("retries")
    record["method"] = options.pop("method", "POST")
    if (flow := options.pop("flow", None)) is not None:
        record.update(
            flow_key=flow["key"],
            flow_parallelism=flow["parallelism"],
            flow_rate=flow["rate"],
            flow_period=flow["period"],
        )
    return {**record, **options}


async def _downgrade(store: Store, message_id: str, user: str) -> None:
    """Rewrite a message's record and every dead letter's in key layout 2."""
    key = store.keyspace.message(message_id)
    record = orjson.loads(await store.redis.hget(key, "r"))
    await store.redis.hset(key, "r", orjson.dumps(_layout_2(record)))
    dlq = store.keyspace.dlq(user)
    for entry_id, fields in await store.redis.xrange(dlq):
        fields[b"r"] = orjson.dumps(_layout_2(orjson.loads(fields[b"r"])))
        await store.redis.xdel(dlq, entry_id)
        await store.redis.xadd(dlq, fields)
    await store.redis.set(store.keyspace.schema, 2)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_records_of_key_layout_2_are_read_with_every_option(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """Key layout 2 kept a message's options as fields of its record; after the upgrade (a
    restart on Redis), a waiting message and a dead letter show every option as before."""
    url = request.getfixturevalue("redis_url") if backend == "redis" else None

    def views(emu: Emulator) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        creds = auth(emu)
        got = httpx.get(f"{emu.url}/v2/messages/{waiting}", headers=creds).json()
        letters = httpx.get(f"{emu.url}/v2/dlq", headers=creds).json()["messages"]
        return got, [{k: v for k, v in d.items() if k != "dlqId"} for d in letters]

    with Emulator(redis_url=url) as emu:
        emu.reset()
        creds = {**auth(emu), **_OPTIONS}
        waiting = httpx.post(
            f"{emu.url}/v2/publish/http://127.0.0.1:9/later",
            headers={**creds, "Upstash-Delay": "1h"},
            content=b"kept",
        ).json()["messageId"]
        httpx.post(f"{emu.url}/v2/publish/http://127.0.0.1:9/down", headers=creds, content=b"x")
        wait_until(lambda: len(views(emu)[1]) == 1, what="the dead letter")
        before = views(emu)
        assert before[0]["labels"] == ["a", "b"] and before[1][0]["flowControlKey"] == "k"
        emu.call(_downgrade(emu.runtime.store, waiting, "defaultUser"))
        if url is None:
            assert views(emu) == before
            emu.reset()
    if url is not None:
        with Emulator(redis_url=url) as upgraded:
            assert views(upgraded) == before
            schema = upgraded.call(
                upgraded.runtime.store.redis.get(upgraded.runtime.store.keyspace.schema)
            )
            assert schema == str(SCHEMA).encode()
            upgraded.reset()


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_batch_is_one_transaction_on_redis_and_a_plain_pipeline_in_memory(
    request: pytest.FixtureRequest, backend: str
) -> None:
    """MULTI and EXEC, and a QUEUED reply for each command, keep other clients of a Redis
    from seeing half a batch; fakeredis applies the pipeline in one call on the event loop's
    thread, so in memory they were work for nothing (a sixth of fakeredis's share)."""
    import asyncio

    from qstash_emulator.store.core import Store

    url = request.getfixturevalue("redis_url") if backend == "redis" else None

    async def main() -> list[bool]:
        store = Store.connect(url, prefix="qe-batch-test:")
        # Internal: which pipelines the group commit asks for has no surface of its own.
        made: list[bool] = []
        make = store.redis.pipeline

        def recording(transaction: bool = True, **kwargs: Any) -> Any:
            made.append(transaction)
            return make(transaction=transaction, **kwargs)

        store.redis.pipeline = recording
        try:
            replies = await asyncio.gather(
                store.write(lambda w: w.pipe.set("qe-batch-test:a", 1)),
                store.write(lambda w: w.pipe.incr("qe-batch-test:a")),
            )
            assert replies == [[True], [2]]
        finally:
            await store.flush()
            await store.close()
        return made

    assert asyncio.run(main()) == [backend == "redis"]
