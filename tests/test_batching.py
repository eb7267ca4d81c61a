"""The Batcher: concurrent writes share a transaction, each caller gets its own replies."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from qstash_emulator.store.group_commit import Batcher, Writes


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
        batcher = Batcher(redis, lambda pipe, key, rows: pipe.rpush(key, *rows))
        try:
            await body(redis, batcher, sizes)
        finally:
            await batcher.drain()
            await redis.aclose()

    asyncio.run(main())


def test_concurrent_writes_share_one_transaction() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        def fill(i: int) -> Callable[[Writes], None]:
            return lambda w: (w.pipe.set(f"k{i}", i), w.pipe.incr("total"))

        replies = await asyncio.gather(*(batcher.run(fill(i)) for i in range(50)))
        assert sizes == [100]
        assert [r[0] for r in replies] == [True] * 50
        assert sorted(r[1] for r in replies) == list(range(1, 51))
        assert await redis.get("k49") == b"49"

    _run(body)


def test_writes_apply_in_submission_order() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        first = batcher.run(lambda w: w.pipe.rpush("order", "a"))
        second = batcher.run(lambda w: (w.pipe.rpush("order", "b"), w.pipe.lrange("order", 0, -1)))
        one, two = await asyncio.gather(first, second)
        assert one == [1]
        assert two == [2, [b"a", b"b"]]

    _run(body)


def test_a_failing_command_fails_only_its_caller() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        await redis.set("text", "not a list")
        results = await asyncio.gather(
            batcher.run(lambda w: w.pipe.set("a", 1)),
            batcher.run(lambda w: w.pipe.lpush("text", "x")),
            batcher.run(lambda w: w.pipe.set("b", 2)),
            return_exceptions=True,
        )
        assert results[0] == [True] and results[2] == [True]
        assert isinstance(results[1], aioredis.ResponseError)
        assert "WRONGTYPE" in str(results[1])
        assert await redis.mget("a", "b") == [b"1", b"2"]

    _run(body)


def test_a_fill_that_raises_queues_nothing_and_fails_only_its_caller() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        def broken(w: Writes) -> None:
            w.pipe.set("half", 1)
            w.zadd("set", "half", 1)
            raise ValueError("bad record")

        results = await asyncio.gather(
            batcher.run(broken),
            batcher.run(lambda w: w.pipe.set("whole", 1)),
            return_exceptions=True,
        )
        assert isinstance(results[0], ValueError)
        assert results[1] == [True]
        assert sizes == [1]
        assert await redis.exists("half", "set") == 0

    _run(body)


def test_writes_submitted_during_a_flush_go_in_the_next_transaction() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        late: list[asyncio.Task[list[Any]]] = []

        def fill(w: Writes) -> None:
            w.pipe.set("early", 1)
            # Submitted while the batcher is building this transaction.
            late.append(asyncio.ensure_future(batcher.run(lambda w: w.pipe.set("late", 1))))

        assert await batcher.run(fill) == [True]
        assert await late[0] == [True]
        assert sizes == [1, 1]

    _run(body)


def test_a_cancelled_caller_still_has_its_writes_stored() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        task = asyncio.ensure_future(batcher.run(lambda w: w.pipe.set("kept", 1)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await batcher.drain()
        assert await redis.get("kept") == b"1"

    _run(body)


def test_sorted_set_changes_of_a_batch_become_one_command_per_kind_and_key() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        await redis.zadd("due", {"old": 1, "gone": 2})

        def change(i: int) -> Callable[[Writes], None]:
            def fill(w: Writes) -> None:
                w.zadd("due", f"m{i}", i)
                w.zrem("due", "gone")
                w.zadd("due", "old", 100 + i, xx=True)
                w.zadd(f"pending:{i % 2}", f"m{i}", i)

            return fill

        await asyncio.gather(*(batcher.run(change(i)) for i in range(20)))
        # ZADD, ZREM, ZADD XX on "due"; one ZADD on each pending set.
        assert sizes == [5]
        assert await redis.zrange("due", 0, -1, withscores=True) == [
            *((f"m{i}".encode(), float(i)) for i in range(20)),
            (b"old", 119.0),
        ]
        assert await redis.zcard("pending:0") == await redis.zcard("pending:1") == 10

    _run(body)


@pytest.mark.parametrize(
    ("changes", "end"),
    [
        ([("set", 1), ("rem", None)], None),
        ([("rem", None), ("set", 2)], 2.0),
        ([("set", 1), ("xx", 3)], 3.0),
        ([("rem", None), ("xx", 3)], None),
        ([("xx", 3)], "before"),
        ([("xx", 3), ("xx", 4)], "before"),
        ([("xx", 3), ("rem", None)], None),
        ([("xx", 3), ("set", 5)], 5.0),
    ],
)
@pytest.mark.parametrize("present", [True, False])
def test_folded_changes_end_as_if_applied_one_by_one(
    changes: list[tuple[str, float | None]], end: float | str | None, present: bool
) -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        if present:
            await redis.zadd("z", {"m": 0})

        def one(kind: str, score: float | None) -> Callable[[Writes], None]:
            def fill(w: Writes) -> None:
                if kind == "rem":
                    w.zrem("z", "m")
                else:
                    assert score is not None
                    w.zadd("z", "m", score, xx=kind == "xx")

            return fill

        await asyncio.gather(*(batcher.run(one(kind, score)) for kind, score in changes))
        assert len(sizes) == 1
        expected: float | None
        if end == "before":
            last = changes[-1][1]
            expected = float(last) if present and last is not None else None
        else:
            expected = end if not isinstance(end, str) else None
        assert await redis.zscore("z", "m") == expected

    _run(body)


def test_a_failed_sorted_set_change_fails_the_operations_that_asked_for_it() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        await redis.set("not-a-zset", "x")
        results = await asyncio.gather(
            batcher.run(lambda w: w.zadd("not-a-zset", "m", 1)),
            batcher.run(lambda w: (w.pipe.set("other", 1), w.zadd("fine", "m", 1))),
            return_exceptions=True,
        )
        assert isinstance(results[0], aioredis.ResponseError)
        assert results[1] == [True]
        assert await redis.zscore("fine", "m") == 1.0

    _run(body)


def test_an_operation_redis_py_cannot_encode_fails_alone() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        results = await asyncio.gather(
            batcher.run(lambda w: w.pipe.set("before", 1)),
            batcher.run(lambda w: w.pipe.set("bad", "\udcff")),  # a lone surrogate
            batcher.run(lambda w: w.zadd("after", "m", 1)),
            return_exceptions=True,
        )
        assert results[0] == [True] and results[2] == []
        assert isinstance(results[1], UnicodeEncodeError)
        assert await redis.get("before") == b"1"
        assert await redis.zscore("after", "m") == 1.0
        assert await redis.exists("bad") == 0

    _run(body)


def test_log_rows_of_a_batch_reach_the_log_writer_together_in_order() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        def rows(i: int) -> Callable[[Writes], None]:
            def fill(w: Writes) -> None:
                w.log("log:a", b"a%d" % i)
                w.log(f"log:{'b' if i % 2 else 'c'}", b"x%d" % i)
                w.log("log:a", b"A%d" % i)

            return fill

        await asyncio.gather(*(batcher.run(rows(i)) for i in range(4)))
        assert sizes == [3]  # one RPUSH per log
        assert await redis.lrange("log:a", 0, -1) == [
            b"a0",
            b"A0",
            b"a1",
            b"A1",
            b"a2",
            b"A2",
            b"a3",
            b"A3",
        ]
        assert await redis.lrange("log:b", 0, -1) == [b"x1", b"x3"]
        assert await redis.lrange("log:c", 0, -1) == [b"x0", b"x2"]

    _run(body)


def test_a_failure_inside_the_batcher_reaches_every_caller() -> None:
    async def body(redis: Any, batcher: Batcher, sizes: list[int]) -> None:
        def broken_writer(pipe: Any, key: str, rows: list[bytes]) -> None:
            raise RuntimeError("log writer bug")

        batcher._log_writer = broken_writer
        results = await asyncio.gather(
            batcher.run(lambda w: w.log("log", b"row")),
            batcher.run(lambda w: w.pipe.set("k", 1)),
            return_exceptions=True,
        )
        assert [type(r) for r in results] == [RuntimeError, RuntimeError]
        batcher._log_writer = lambda pipe, key, rows: pipe.rpush(key, *rows)
        assert await batcher.run(lambda w: w.pipe.set("k", 2)) == [True]

    _run(body)


def test_every_due_time_is_written_through_the_batcher() -> None:
    """Due times reach the due indexes only as ``Writes.zadd``, which wakes the engine once
    the write lands: a ZADD of its own to one of them would leave a sleeping engine asleep."""
    names = ("_due", "_wake", "_waits", ".due", "queue_wake", "schedule_due", "flow_wake", "waits")
    package = Path(__file__).parent.parent / "qstash_emulator"
    found = []
    for path in package.rglob("*.py"):
        if path.name == "_batching.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "zadd" or not node.args:
                continue
            target = ast.unparse(node.args[0])
            through_writes = isinstance(node.func.value, ast.Name) and node.func.value.id == "w"
            if any(target.endswith(n) for n in names) and not through_writes:
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert found == []
