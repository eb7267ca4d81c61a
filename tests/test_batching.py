"""The Batcher: concurrent writes share a transaction, each caller gets its own replies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from qstash_emulator._batching import Batcher


def _run(body: Callable[[Any, Batcher, list[int]], Awaitable[None]]) -> None:
    """Run ``body(redis, batcher, sizes)``; ``sizes`` lists each transaction's command count."""

    async def main() -> None:
        redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        sizes: list[int] = []
        make_pipeline = redis.pipeline

        def counting_pipeline(transaction: bool = True) -> Any:
            pipe = make_pipeline(transaction=transaction)
            execute = pipe.execute

            async def counted(raise_on_error: bool = True) -> Any:
                sizes.append(len(pipe.command_stack))
                return await execute(raise_on_error=raise_on_error)

            pipe.execute = counted
            return pipe

        redis.pipeline = counting_pipeline
        batcher = Batcher(redis)
        try:
            await body(redis, batcher, sizes)
        finally:
            await batcher.close()
            await redis.aclose()

    asyncio.run(main())


def test_concurrent_writes_share_one_transaction() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        def fill(i: int) -> Callable[[Any], None]:
            return lambda pipe: (pipe.set(f"k{i}", i), pipe.incr("total"))

        replies = await asyncio.gather(*(batcher.run(fill(i)) for i in range(50)))
        assert sizes == [100]
        assert [r[0] for r in replies] == [True] * 50
        assert sorted(r[1] for r in replies) == list(range(1, 51))
        assert await redis.get("k49") == b"49"

    _run(body)


def test_writes_apply_in_submission_order() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        first = batcher.run(lambda pipe: pipe.rpush("order", "a"))
        second = batcher.run(lambda pipe: (pipe.rpush("order", "b"), pipe.lrange("order", 0, -1)))
        one, two = await asyncio.gather(first, second)
        assert one == [1]
        assert two == [2, [b"a", b"b"]]

    _run(body)


def test_a_failing_command_fails_only_its_caller() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        await redis.set("text", "not a list")
        results = await asyncio.gather(
            batcher.run(lambda pipe: pipe.set("a", 1)),
            batcher.run(lambda pipe: pipe.lpush("text", "x")),
            batcher.run(lambda pipe: pipe.set("b", 2)),
            return_exceptions=True,
        )
        assert results[0] == [True] and results[2] == [True]
        assert isinstance(results[1], aioredis.ResponseError)
        assert "WRONGTYPE" in str(results[1])
        assert await redis.mget("a", "b") == [b"1", b"2"]

    _run(body)


def test_a_fill_that_raises_queues_nothing_and_fails_only_its_caller() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        def broken(pipe: Any) -> None:
            pipe.set("half", 1)
            raise ValueError("bad record")

        results = await asyncio.gather(
            batcher.run(broken),
            batcher.run(lambda pipe: pipe.set("whole", 1)),
            return_exceptions=True,
        )
        assert isinstance(results[0], ValueError)
        assert results[1] == [True]
        assert sizes == [1]
        assert await redis.exists("half") == 0

    _run(body)


def test_writes_submitted_during_a_flush_go_in_the_next_transaction() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        late: list[asyncio.Task[list[Any]]] = []

        def fill(pipe: Any) -> None:
            pipe.set("early", 1)
            # Submitted while the batcher is building this transaction.
            late.append(asyncio.ensure_future(batcher.run(lambda p: p.set("late", 1))))

        assert await batcher.run(fill) == [True]
        assert await late[0] == [True]
        assert sizes == [1, 1]

    _run(body)


def test_a_cancelled_caller_still_has_its_writes_stored() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        task = asyncio.ensure_future(batcher.run(lambda pipe: pipe.set("kept", 1)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await batcher.close()
        assert await redis.get("kept") == b"1"

    _run(body)
