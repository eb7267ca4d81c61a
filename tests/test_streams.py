"""Log rows many to a stream entry: retention and paging by rows."""

from __future__ import annotations

import asyncio
from typing import Any

import fakeredis

from qstash_emulator.store.streams import LogWriter, scan_rows


async def _write(redis: Any, writer: LogWriter, batches: list[list[bytes]]) -> None:
    for rows in batches:
        pipe = redis.pipeline(transaction=True)
        writer.write(pipe, "log", rows)
        await pipe.execute()


async def _all_rows(redis: Any) -> list[bytes]:
    rows, _ = await scan_rows(redis, "log", None, 1_000_000, False, lambda row: row)
    return rows


def test_a_batch_of_rows_is_one_entry_and_a_large_one_is_split() -> None:
    async def main() -> tuple[int, list[bytes]]:
        redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        await _write(redis, LogWriter(1_000), [[b"a", b"b", b"c"], [b"%d" % i for i in range(20)]])
        return await redis.xlen("log"), await _all_rows(redis)

    entries, rows = asyncio.run(main())
    assert entries == 3  # 3 rows, then 16 + 4
    assert rows == [b"a", b"b", b"c", *(b"%d" % i for i in range(20))]


def test_trimming_keeps_about_the_retention_in_rows() -> None:
    async def main() -> int:
        redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        rows = [[b"%d-%d" % (i, j) for j in range(3)] for i in range(400)]
        await _write(redis, LogWriter(100), rows)
        return len(await _all_rows(redis))

    kept = asyncio.run(main())
    assert 90 <= kept <= 120, kept  # about 100: trimmed to whole entries every 10 rows


def test_pages_count_rows_and_resume_inside_an_entry() -> None:
    async def main() -> list[tuple[list[bytes], str | None]]:
        redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        await _write(redis, LogWriter(1_000), [[b"1", b"2", b"3", b"4", b"5"], [b"6", b"7"]])
        pages = []
        cursor = None
        while True:
            rows, cursor = await scan_rows(
                redis, "log", cursor, 3, True, lambda r: None if r == b"4" else r
            )
            pages.append((rows, cursor))
            if cursor is None:
                return pages

    pages = asyncio.run(main())
    assert [rows for rows, _ in pages] == [[b"7", b"6", b"5"], [b"3", b"2", b"1"]]
    assert pages[0][1] is not None and "." in pages[0][1]
