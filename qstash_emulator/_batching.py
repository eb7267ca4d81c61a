"""Group commit: the store writes of concurrent tasks share one MULTI/EXEC round trip.

Every redis-py command pays for its own packing, a connection checkout and a round trip
(fakeredis: a RESP parse and dispatch in Python). Under load, dozens of publishes and
finished attempts want to write in the same event-loop turn; sent together they cost a
fraction of that, and each caller still returns only after its own writes are stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["Batcher", "Fill"]

# Queues one operation's commands onto the shared pipeline.
Fill = Callable[[Any], None]


class Batcher:
    """Runs queued operations in submission order, as few transactions as possible."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._waiting: list[tuple[Fill, asyncio.Future[list[Any]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, fill: Fill) -> list[Any]:
        """Apply ``fill``'s commands atomically with whatever else is waiting; their replies."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((fill, future))
        if self._flusher is None:
            # Started now, it first runs after the callbacks already ready in this loop turn:
            # every task woken by the same event gets to join the batch.
            self._flusher = asyncio.ensure_future(self._flush())
        return await future

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._execute(batch)
        finally:
            self._flusher = None
            for _, future in self._waiting:  # only when cancelled mid-way
                future.cancel()

    async def _execute(self, batch: list[tuple[Fill, asyncio.Future[list[Any]]]]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        spans: list[tuple[int, int, asyncio.Future[list[Any]]]] = []
        for fill, future in batch:
            start = len(pipe.command_stack)
            try:
                fill(pipe)
            except Exception as exc:
                del pipe.command_stack[start:]
                if not future.done():
                    future.set_exception(exc)
                continue
            spans.append((start, len(pipe.command_stack), future))
        if not spans:
            return
        try:
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _, _, future in spans:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, _, future in spans:
                future.cancel()
            raise
        for start, end, future in spans:
            if future.done():  # its caller was cancelled; the writes stand
                continue
            part = replies[start:end]
            error = next((r for r in part if isinstance(r, Exception)), None)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(part)
