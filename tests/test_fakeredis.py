"""The in-memory client: commands reach fakeredis as argument lists, replies are unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from qstash_emulator.store import memory as _fakeredis
from qstash_emulator.store.core import Store


async def _script(r: Any) -> list[Any]:
    """Every kind of command the emulator sends, and the replies it reads."""
    out: list[Any] = [
        await r.hset("m:1", mapping={"r": b'{"a":1}', "b": b"\x00\xffbody" * 300}),
        await r.hmget("m:1", ["r", "b", "missing"]),
        await r.zadd("due", {"a": 1, "b": 2.5, "c": 2**52 + 7}),
        await r.zadd("due", {"a": 9}, xx=True),
        await r.zrangebyscore("due", "-inf", f"({2**52}", start=0, num=5, withscores=True),
        await r.zmscore("due", ["a", "zz", "c"]),
        await r.zcount("due", 2**52, "+inf"),
        await r.set("dedup", "x|1", nx=True, px=60_000),
        await r.set("dedup", "y|2", nx=True, px=60_000),
        await r.get("dedup"),
        await r.pexpire("m:1", 50_000),
        await r.rpush("wait", "m1", "m2"),
        await r.lpop("wait"),
        await r.client_setname("qe"),  # a two-word command name
        await r.client_getname(),
    ]
    for i in range(3):
        await r.xadd("logs", {"d": f"row {i}".encode()})
    out.append(await r.xtrim("logs", maxlen=2, approximate=False))
    out.append([fields for _, fields in await r.xrevrange("logs", "+", "-", count=5)])
    pipe = r.pipeline(transaction=True)
    pipe.hset("m:2", "r", "{}")
    pipe.zrem("due", "b")
    pipe.lpush("m:2", "wrong type")
    out.append(
        [
            type(x).__name__ if isinstance(x, Exception) else x
            for x in await pipe.execute(raise_on_error=False)
        ]
    )
    with pytest.raises(aioredis.ResponseError, match="WRONGTYPE"):
        await r.lpush("m:1", "x")
    out.append(sorted([k async for k in r.scan_iter(match="m:*")]))
    return out


def test_replies_match_the_resp_connection() -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        direct = _fakeredis.connect(4)
        plain = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        try:
            return await _script(direct), await _script(plain)
        finally:
            await direct.aclose()
            await plain.aclose()

    direct, plain = asyncio.run(main())
    assert direct == plain
    assert direct[4] == [(b"b", 2.5), (b"a", 9.0)]


def test_the_in_memory_store_uses_the_direct_connection() -> None:
    assert _fakeredis.direct_supported()
    store = Store.connect(None)
    direct = _fakeredis.direct_connection_class()
    assert store.redis.connection_pool.connection_class is direct


@pytest.fixture
def fresh_lookup() -> Iterator[None]:
    """The lookup of fakeredis's internals is cached: each test here makes its own."""
    _fakeredis.direct_connection_class.cache_clear()
    yield
    _fakeredis.direct_connection_class.cache_clear()


def _works_as_a_store() -> Any:
    async def main() -> Any:
        store = Store.connect(None)
        try:
            await store.redis.set("k", "v")
            return store.redis.connection_pool.connection_class, await store.redis.get("k")
        finally:
            await store.redis.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize(
    "module", ["fakeredis._socket._base", "fakeredis._socket", "fakeredis.aioredis"]
)
def test_a_moved_internal_module_falls_back_to_the_plain_connection(
    fresh_lookup: None, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "fakeredis._socket._base", raising=False)
    monkeypatch.setitem(sys.modules, module, None)  # what `import` then refuses
    assert not _fakeredis.direct_supported()
    connection_class, value = _works_as_a_store()
    assert value == b"v"
    assert connection_class.__name__ != "DirectConnection"


@pytest.mark.parametrize("index", range(len(_fakeredis._CLASSES)))
def test_a_missing_class_attribute_falls_back_to_the_plain_connection(
    fresh_lookup: None, monkeypatch: pytest.MonkeyPatch, index: int
) -> None:
    classes = list(_fakeredis._CLASSES)
    module, name, attributes = classes[index]
    classes[index] = (module, name, (*attributes, "_renamed_in_a_later_release"))
    monkeypatch.setattr(_fakeredis, "_CLASSES", tuple(classes))
    assert not _fakeredis.direct_supported()
    connection_class, value = _works_as_a_store()
    assert value == b"v" and connection_class.__name__ != "DirectConnection"


def test_a_connection_whose_socket_lacks_an_internal_sends_resp(
    fresh_lookup: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    attributes = (*_fakeredis._SOCKET_ATTRIBUTES, "_renamed_in_a_later_release")
    monkeypatch.setattr(_fakeredis, "_SOCKET_ATTRIBUTES", attributes)

    async def main() -> tuple[list[Any], list[Any]]:
        degraded = _fakeredis.connect(4)
        plain = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        try:
            assert degraded.connection_pool.connection_class.__name__ == "DirectConnection"
            return await _script(degraded), await _script(plain)
        finally:
            await degraded.aclose()
            await plain.aclose()

    degraded, plain = asyncio.run(main())
    assert degraded == plain


def test_a_blocking_command_waits_and_answers() -> None:
    async def main() -> Any:
        r = _fakeredis.connect(4)
        try:
            waiting = asyncio.ensure_future(r.blpop(["jobs"], timeout=5))
            await asyncio.sleep(0.01)
            assert not waiting.done()
            await r.rpush("jobs", "one")
            return await asyncio.wait_for(waiting, 5)
        finally:
            await r.aclose()

    assert asyncio.run(main()) == (b"jobs", b"one")


def test_a_disconnected_server_raises_connection_error() -> None:
    async def main() -> None:
        r = _fakeredis.connect(4)
        try:
            await r.set("k", "v")
            r.connection_pool.connection_kwargs["server"].connected = False
            with pytest.raises(aioredis.ConnectionError):
                await r.get("k")
        finally:
            await r.aclose()

    asyncio.run(main())


def test_a_cancel_is_not_dropped_by_a_command() -> None:
    """A task busy with the in-memory store ends when cancelled. Through redis-py's write
    timeout every command went through asyncio.wait_for, which on Python 3.11 drops a cancel
    arriving as the write completes: the task ran on, and a reset waited for it."""

    async def main() -> list[bool]:
        r = _fakeredis.connect(4)
        ended = []
        try:
            for _ in range(20):
                running = [True]

                async def busy(running: list[bool] = running) -> None:
                    while running[0]:
                        await r.set("k", "v")
                        await asyncio.sleep(0)

                task = asyncio.ensure_future(busy())
                for _ in range(3):
                    await asyncio.sleep(0)
                task.cancel()
                done, _ = await asyncio.wait([task], timeout=1)
                ended.append(bool(done))
                running[0] = False  # one that ran on stops here
                await asyncio.gather(task, return_exceptions=True)
        finally:
            await r.aclose()
        return ended

    assert asyncio.run(main()) == [True] * 20
