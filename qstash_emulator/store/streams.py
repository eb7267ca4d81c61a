"""Redis streams as the store uses them: log rows written many to an entry, and paging.

A log entry holds the rows one batch wrote for one user (fields ``d``, ``d1``, ``d2``...):
one XADD instead of one a row. Pages count rows, so a cursor may point inside an entry.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

__all__ = ["LogWriter", "scan_rows", "scan_stream"]

_ROWS_PER_ENTRY = 16
T = TypeVar("T")


class LogWriter:
    """Appends log rows, many to an entry, and keeps each log near ``retention`` rows."""

    def __init__(self, retention: int) -> None:
        self.retention = retention
        self._counts: dict[str, list[int]] = {}  # rows, entries, rows since the last trim

    def write(self, pipe: Any, key: str, rows: list[bytes]) -> None:
        """Queue on ``pipe`` the commands that append ``rows`` to the log at ``key``."""
        counts = self._counts.setdefault(key, [0, 0, 0])
        for start in range(0, len(rows), _ROWS_PER_ENTRY):
            chunk = rows[start : start + _ROWS_PER_ENTRY]
            fields = {"d": chunk[0]}
            fields.update((f"d{i}", row) for i, row in enumerate(chunk[1:], 1))
            pipe.xadd(key, fields)
            counts[1] += 1
        counts[0] += len(rows)
        counts[2] += len(rows)
        # XADD with MAXLEN costs fakeredis a third more than without: trim every tenth of the
        # retention instead, to the entries that hold about that many rows. Exactly: "~" trims
        # whole nodes of 100 entries, which is 1,600 rows here.
        if counts[2] >= max(1, self.retention // 10):
            entries = max(1, round(self.retention * counts[1] / counts[0]))
            pipe.xtrim(key, maxlen=entries, approximate=False)
            counts[2] = 0

    def forget(self, key: str) -> None:
        self._counts.pop(key, None)

    def clear(self) -> None:
        self._counts.clear()


async def scan_rows(
    redis: Any,
    key: str,
    cursor: str | None,
    count: int,
    latest_first: bool,
    pick: Callable[[bytes], T | None],
    weigh: Callable[[T], int] = lambda _: 0,
    max_bytes: int | None = None,
) -> tuple[list[T], str | None]:
    """Page through a log row by row, newest or oldest first: what ``pick`` makes of each
    row it keeps (None to skip it), each row read once. The page ends at ``count`` rows, or
    once the rows kept ``weigh`` ``max_bytes`` together. A cursor is an entry id, with ``.N``
    when the page ended inside that entry."""
    start, _, skip = (cursor or "").partition(".")
    found: list[T] = []
    weight = 0
    async with contextlib.aclosing(_walk(redis, key, start, latest_first, count)) as walk:
        async for entry_id, fields in walk:
            if len(found) == count or (max_bytes is not None and weight >= max_bytes):
                return found, entry_id
            rows = [fields[b"d"], *(fields[b"d%d" % i] for i in range(1, len(fields)))]
            if latest_first:
                rows.reverse()
            for at in range(int(skip or 0) if entry_id == start else 0, len(rows)):
                kept = pick(rows[at])
                if kept is not None:
                    found.append(kept)
                    weight += weigh(kept)
                    full = len(found) == count or (max_bytes is not None and weight >= max_bytes)
                    if full and at + 1 < len(rows):
                        return found, f"{entry_id}.{at + 1}"
    return found, None


async def scan_stream(
    redis: Any,
    key: str,
    cursor: str | None,
    count: int,
    latest_first: bool,
    keep: Callable[[dict[bytes, bytes]], bool],
    weigh: Callable[[dict[bytes, bytes]], int] = lambda _: 0,
    max_bytes: int | None = None,
) -> tuple[list[tuple[str, dict[bytes, bytes]]], str | None]:
    """Page through a stream, newest or oldest first, keeping entries that ``keep`` accepts;
    the page ends at ``count`` entries or once the entries kept ``weigh`` ``max_bytes``."""
    found: list[tuple[str, dict[bytes, bytes]]] = []
    weight = 0
    async with contextlib.aclosing(_walk(redis, key, cursor, latest_first, count)) as walk:
        async for entry_id, fields in walk:
            if len(found) == count or (max_bytes is not None and weight >= max_bytes):
                return found, entry_id
            if keep(fields):
                found.append((entry_id, fields))
                weight += weigh(fields)
    return found, None


async def _walk(
    redis: Any, key: str, start: str | None, latest_first: bool, count: int
) -> AsyncGenerator[tuple[str, dict[bytes, bytes]], None]:
    """Every entry from ``start`` (included) on, a chunk of about ``2 * count`` a read."""
    chunk = max(100, count * 2)
    position = start or None
    while True:
        if latest_first:
            entries = await redis.xrevrange(key, max=position or "+", min="-", count=chunk)
        else:
            entries = await redis.xrange(key, min=position or "-", max="+", count=chunk)
        for entry_id, fields in entries:
            yield entry_id.decode(), fields
        if len(entries) < chunk:
            return
        position = "(" + entries[-1][0].decode()
