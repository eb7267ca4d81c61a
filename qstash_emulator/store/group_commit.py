"""Group commit: the store writes of concurrent tasks share one MULTI/EXEC round trip.

Every redis-py command pays for its own packing, a connection checkout and a round trip, and
fakeredis for its dispatch in Python, whatever the command carries. Under load, dozens of
publishes and finished attempts write in the same event-loop turn; sent together they cost a
fraction of that, and each caller still returns only after its own writes are stored.
Sorted-set changes and log rows go further: the batch's changes to one sorted set become one
ZADD and one ZREM, and its rows for one log are written together.

Every due time the engine acts on (a message's delivery, a schedule's run, a queue delay, a
flow-control window, a wait's deadline) is written here, as a ``Writes.zadd`` on one of the
store's due indexes: once it has landed, the batcher tells ``on_due`` the earliest, so an
engine sleeping until later (or until woken) wakes for it, and caches of those indexes are
dropped before it looks. No caller has to remember to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis

__all__ = ["NOT_A_TIME", "AppendLog", "Batcher", "Fill", "Writes"]

# Scores from here on mark a state (claimed, parked), not a time anything is due.
NOT_A_TIME = float(2**52)


class Writes:
    """One operation's writes: commands on ``pipe`` (whose replies it gets back), and
    sorted-set changes and log rows, folded with the batch's others and applied after them."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.zsets: list[tuple[str, str, float | None, bool]] = []
        self.logs: list[tuple[str, bytes]] = []

    def log(self, key: str, row: bytes) -> None:
        """Append ``row`` to the log at ``key`` (after the rows submitted before it)."""
        self.logs.append((key, row))

    def zadd(self, key: str, member: str, score: float, *, xx: bool = False) -> None:
        """Set ``member``'s score; with ``xx`` only if it is in the set by then."""
        self.zsets.append((key, member, score, xx))

    def zrem(self, key: str, member: str) -> None:
        self.zsets.append((key, member, None, False))


# Queues one operation's writes.
Fill = Callable[[Writes], None]
# Queues the commands that append a batch's rows to one log: (pipeline, key, rows).
AppendLog = Callable[[Any, str, list[bytes]], None]

_SET, _REMOVE, _IF_PRESENT = 0, 1, 2


class Batcher:
    """Runs queued operations in submission order, as few transactions as possible."""

    def __init__(
        self,
        redis: Any,
        log_writer: AppendLog,
        due_keys: frozenset[str] = frozenset(),
        on_due: Callable[[str, int], None] | None = None,
        transaction: bool = True,
    ) -> None:
        self.redis = redis
        # MULTI/EXEC around each batch; False only where a pipeline is applied whole by
        # itself (the in-memory store: fakeredis runs it in one call, nothing in between).
        self._transaction = transaction
        self._log_writer = log_writer
        self._due_keys = due_keys
        self.on_due = on_due
        self._waiting: list[tuple[Fill, asyncio.Future[list[Any]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, fill: Fill) -> list[Any]:
        """Apply ``fill``'s writes atomically with whatever else is waiting; the replies to
        its ``pipe`` commands."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((fill, future))
        if self._flusher is None:
            # Started now, it first runs after the callbacks already ready in this loop turn:
            # every task woken by the same event gets to join the batch.
            self._flusher = asyncio.ensure_future(self._flush())
        return await future

    async def drain(self) -> None:
        """Return once every write submitted so far is applied, even those whose callers
        were cancelled (a reset must not find them landing after it)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await self._execute(batch)
                except Exception as exc:  # a bug here must not leave a caller waiting
                    _fail((future for _, future in batch), exc)
                except BaseException:
                    for _, future in batch:
                        future.cancel()
                    raise
        finally:
            self._flusher = None
            for _, future in self._waiting:  # only when cancelled mid-way
                future.cancel()

    async def _execute(self, batch: list[tuple[Fill, asyncio.Future[list[Any]]]]) -> None:
        pipe = self.redis.pipeline(transaction=self._transaction)
        spans: list[tuple[int, int, asyncio.Future[list[Any]]]] = []
        folded: dict[str, dict[str, tuple[int, float]]] = {}
        logs: dict[str, list[bytes]] = {}
        writers: dict[str, list[asyncio.Future[list[Any]]]] = {}
        for fill, future in batch:
            start = len(pipe.command_stack)
            writes = Writes(pipe)
            try:
                fill(writes)
            except Exception as exc:
                del pipe.command_stack[start:]
                _fail([future], exc)
                continue
            spans.append((start, len(pipe.command_stack), future))
            for key, member, score, xx in writes.zsets:
                _fold(folded.setdefault(key, {}), member, score, xx)
                writers.setdefault(key, []).append(future)
            for key, row in writes.logs:
                logs.setdefault(key, []).append(row)
                writers.setdefault(key, []).append(future)
        if not spans:
            return
        emitted = _emit(pipe, folded)
        for key, rows in logs.items():
            start = len(pipe.command_stack)
            self._log_writer(pipe, key, rows)
            emitted.extend((index, key) for index in range(start, len(pipe.command_stack)))
        try:
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            lost = isinstance(exc, (aioredis.ConnectionError, aioredis.TimeoutError))
            if len(batch) > 1 and not lost:
                # Refused as a whole (an argument redis-py cannot encode, a command the server
                # will not queue), so nothing was applied: run each operation alone, and the
                # error stays with the one that caused it.
                for one in batch:
                    if not one[1].done():
                        await self._execute([one])
            else:
                _fail((future for _, _, future in spans), exc)
            return
        for index, key in emitted:
            if isinstance(replies[index], Exception):
                _fail(writers[key], replies[index])
        self._announce(folded)
        for start, end, future in spans:
            if future.done():  # its caller was cancelled (the writes stand), or a fold failed
                continue
            part = replies[start:end]
            error = next((r for r in part if isinstance(r, Exception)), None)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(part)

    def _announce(self, folded: dict[str, dict[str, tuple[int, float]]]) -> None:
        """Tell ``on_due`` the earliest due time the batch wrote to each due index (applied
        now)."""
        if self.on_due is None:
            return
        for key in self._due_keys & folded.keys():
            times = [
                score
                for kind, score in folded[key].values()
                if kind != _REMOVE and score < NOT_A_TIME
            ]
            if times:
                self.on_due(key, int(min(times)))


def _fail(futures: Iterable[asyncio.Future[list[Any]]], exc: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc)


def _fold(
    changes: dict[str, tuple[int, float]], member: str, score: float | None, xx: bool
) -> None:
    """Combine a member's change with the earlier ones of the batch: the end state counts."""
    if score is None:
        changes[member] = (_REMOVE, 0.0)
    elif not xx:
        changes[member] = (_SET, score)
    else:
        earlier = changes.get(member)
        if earlier is None or earlier[0] == _IF_PRESENT:
            changes[member] = (_IF_PRESENT, score)
        elif earlier[0] == _SET:
            changes[member] = (_SET, score)
        # after a removal it stays removed


def _emit(pipe: Any, folded: dict[str, dict[str, tuple[int, float]]]) -> list[tuple[int, str]]:
    """Queue the folded changes (members differ between the commands of a key, so their
    order is free); the pipeline index of each command and its key."""
    emitted: list[tuple[int, str]] = []
    for key, changes in folded.items():
        removed = [m for m, (kind, _) in changes.items() if kind == _REMOVE]
        scored = {m: s for m, (kind, s) in changes.items() if kind == _SET}
        present = {m: s for m, (kind, s) in changes.items() if kind == _IF_PRESENT}
        if removed:
            emitted.append((len(pipe.command_stack), key))
            pipe.zrem(key, *removed)
        if scored:
            emitted.append((len(pipe.command_stack), key))
            pipe.zadd(key, scored)
        if present:
            emitted.append((len(pipe.command_stack), key))
            pipe.zadd(key, present, xx=True)
    return emitted
