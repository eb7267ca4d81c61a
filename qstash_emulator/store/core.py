"""Durable state through the redis-py asyncio API: fakeredis in memory, or a real Redis.

The store layer is this module and its companions, the other modules of the ``store``
package (one a resource, reached as ``store.url_groups``, ``store.queues`` ...): nothing else
talks to Redis. The key layout of every family is in ``store.keyspace``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import parse_url

from .. import _json
from ..model.message import DeadLetter, Message, State
from ..server.masking import mask_secrets
from .bodies import INLINE, BodyStore, row_bytes
from .flow_control import FlowControlStore
from .group_commit import Batcher, Fill, Writes
from .keys import KeyStore
from .keyspace import SCHEMA, Keyspace
from .lease import Lease
from .queues import QueueStore
from .quotas import QuotaStore
from .schedules import ScheduleStore
from .streams import LogWriter, scan_rows, scan_stream
from .url_groups import UrlGroupStore

__all__ = ["HandOver", "Store", "StoreUnavailable", "decode_dlq"]

log = logging.getLogger("qstash_emulator")

Row = dict[str, Any]
# Log rows as stored (key, JSON), and the long bodies taken out of them (key, data).
Logged = tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]
# A page of log rows or dead letters ends early once it holds this many bytes.
PAGE_BYTES = 16 << 20
T = TypeVar("T")
# The errors of a store that does not answer (down, restarting, unreachable), as opposed to
# one that refuses a command: the caller may try again once it answers.
StoreUnavailable = (aioredis.ConnectionError, aioredis.TimeoutError)
_POOL_SIZE = 64
# In-flight messages stay on the due list, scored past any delivery time (2**52 ms is
# 140,000 years, and CLAIMED + now is still an exact double): claiming and finishing are a
# score change and a removal on one key instead of moves between two.
_CLAIMED = 2**52
_WAITING = f"({_CLAIMED}"
_FRESH_MAX = 10_000
_NONE_WAITING = float("inf")


class HandOver(Protocol):
    """Who delivers (the engine): takes messages due at once as they are stored, claimed in
    the same write, instead of finding them on the due list and claiming them after."""

    def take(self, messages: list[Message]) -> tuple[list[Message], int]:
        """Those it takes (counted as in flight from now on), and a ticket for the others."""
        ...

    def handed(self, messages: list[Message], ticket: int) -> None:
        """The write of the messages taken landed: attempt them."""
        ...

    def release(self, messages: list[Message], ticket: int) -> None:
        """The write failed: they were never stored."""
        ...


# A message's hash: its record, its body, or (finished, big) its body's digest in the budget.
_MESSAGE_FIELDS = ["r", "b", "bref"]


class Store:
    """Every read and write of emulator state goes through here."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "qe:",
        log_retention: int = 10_000,
        sweep_expired: bool = False,
        body_budget: int = 256 << 20,
        dlq_retention_ms: int | None = None,
        transactions: bool = True,
    ) -> None:
        # Any: redis-py's overloads type every reply as a union; replies here are bytes.
        self.redis: Any = client
        self._logs = LogWriter(log_retention)
        self.keyspace = Keyspace(prefix)
        self._due = self.keyspace.due
        self._finished = self.keyspace.finished
        # Hear (index, earliest time) for each write of due times (``Keyspace.due_indexes``),
        # once applied: the engine's wake-up, and the timers' caches of those indexes.
        self.due_listeners: list[Callable[[str, int], None]] = []
        self._batch = Batcher(
            client, self._logs.write, self.keyspace.due_indexes, self._due_written, transactions
        )
        self.url_groups = UrlGroupStore(client, self.keyspace)
        self.queues = QueueStore(client, self.keyspace, self._batch)
        self.schedules = ScheduleStore(client, self.keyspace, self._batch)
        self.flow_control = FlowControlStore(client, self.keyspace, self._batch)
        self.quotas = QuotaStore(client, self.keyspace)
        self.keys = KeyStore(client, self.keyspace)
        self.bodies = BodyStore(client, self.keyspace, body_budget)
        # Messages this process stored due at once, until claimed: the claim reads them here
        # instead of back from the store. Any later write of a record drops its entry.
        self._fresh: dict[str, Message] = {}
        # The engine while it dispatches: messages due at once go to it claimed (``add``).
        self.hand_over: HandOver | None = None
        # The earliest due time waiting on the due list, as this process knows it (None:
        # unknown, read it; _NONE_WAITING). A claim learns it from its read, and every write
        # of a due time lowers it (``_due_written``): a claim with nothing due yet reads
        # nothing. A removal leaves it early, which only costs a read.
        self._due_floor: float | None = None
        self._due_version = 0
        self._sweep_expired = sweep_expired
        self._sweeper: asyncio.Task[None] | None = None
        # Hear every log row as it is written (the dashboard's live stream); rows carry _user.
        self.row_listeners: list[Callable[[list[Row]], None]] = []
        # How long a dead letter is kept, by the wall clock (the plan's; None: until deleted).
        self.dlq_retention_ms = dlq_retention_ms

    @staticmethod
    def check_url(url: str) -> None:
        """Refuse a Redis URL that cannot be parsed, naming it without its password."""
        try:
            parse_url(url)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise ValueError(f"--redis-url {mask_secrets(url)}: {exc}") from None

    @classmethod
    def connect(
        cls,
        url: str | None,
        log_retention: int = 10_000,
        prefix: str = "qe:",
        body_budget: int = 256 << 20,
        dlq_retention_ms: int | None = None,
    ) -> Store:
        """A real Redis at ``url``, or a private in-memory fakeredis when ``url`` is None."""
        client: Any
        # A batch of writes is one MULTI/EXEC on a Redis other clients share; fakeredis over
        # the direct connection applies a pipeline in one synchronous call, atomic without.
        transactions = True
        if url is None:
            from . import memory as _fakeredis

            client = _fakeredis.connect(_POOL_SIZE)
            transactions = not _fakeredis.direct_supported()
        else:
            # A blocking pool: past the limit, a request waits for a connection instead of
            # failing with "Too many connections" (redis-py's default pool raises at 100).
            # One retry on a fresh connection: after a Redis restart every pooled connection
            # is dead, and each would otherwise fail one request before it is replaced.
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=_POOL_SIZE,
                timeout=None,
                retry=Retry(NoBackoff(), 1),
                retry_on_error=[aioredis.ConnectionError],
            )
            client = aioredis.Redis(connection_pool=pool)
        return cls(
            client, prefix, log_retention, url is None, body_budget, dlq_retention_ms, transactions
        )

    def _due_written(self, index: str, when_ms: int) -> None:
        if index == self._due:
            self._due_version += 1
            if self._due_floor is not None:
                self._due_floor = min(self._due_floor, when_ms)
        for listener in list(self.due_listeners):
            listener(index, when_ms)

    def lease(self) -> Lease:
        """This emulator's claim on the store (see ``store.lease``)."""
        return Lease(self.redis, self.keyspace.lease)

    async def start(self) -> None:
        """Begin upkeep: forget finished messages once their grace is over, and in memory
        make fakeredis drop expired keys (dedup ids), which it does only for a key that is
        touched or when the keys are counted: count them every second."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._upkeep())

    async def _upkeep(self) -> None:
        turn = 0
        while True:
            await asyncio.sleep(0.25)
            turn += 1
            try:
                wall_ms = int(time.time() * 1_000)
                await self.forget_finished(wall_ms)
                if turn % 240 == 1:  # once a minute
                    await self.trim_dead_letters(wall_ms)
                if self._sweep_expired and turn % 4 == 0:
                    await self.redis.dbsize()
            except aioredis.RedisError:  # a Redis restart: try again next turn
                log.debug("store upkeep failed", exc_info=True)

    async def forget_finished(self, wall_ms: int) -> None:
        """Delete the messages whose grace period ended by ``wall_ms``."""
        while True:
            found = await self.redis.zrangebyscore(self._finished, "-inf", wall_ms, 0, 1_000)
            if not found:
                return
            await self._batch.run(functools.partial(self._forget, [i.decode() for i in found]))
            if len(found) < 1_000:
                return

    async def trim_dead_letters(self, wall_ms: int) -> None:
        """Delete the dead letters older than the retention at ``wall_ms`` (a dead letter's
        id is the wall time it was made)."""
        if self.dlq_retention_ms is None:
            return
        oldest = max(0, wall_ms - self.dlq_retention_ms)
        async for key in self.redis.scan_iter(match=self.keyspace.all_dlqs(), count=1_000):
            await self.redis.xtrim(key, minid=oldest, approximate=False)

    def _forget(self, ids: list[str], w: Writes) -> None:
        w.pipe.delete(*(self.keyspace.message(i) for i in ids))
        for message_id in ids:
            w.zrem(self._finished, message_id)

    async def ping(self) -> None:
        """Return once the store answers; StoreUnavailable if it does not."""
        await self.redis.ping()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        await self._batch.drain()
        await self.redis.aclose(close_connection_pool=True)

    async def flush(self) -> None:
        """Remove every key under the prefix (used by reset)."""
        await self._batch.drain()
        self._logs.clear()
        self._fresh.clear()
        self._due_floor = None
        self.bodies.forget()
        keys = [
            k async for k in self.redis.scan_iter(match=self.keyspace.everything(), count=1_000)
        ]
        for start in range(0, len(keys), 1_000):
            await self.redis.delete(*keys[start : start + 1_000])

    # Messages ------------------------------------------------------------------------------

    async def write(self, fill: Fill) -> list[Any]:
        """Apply ``fill``'s writes in one transaction (for the store's companions, such as
        the workflow run store); the replies to its pipeline commands."""
        return await self._batch.run(fill)

    async def add(
        self, messages: Iterable[Message], rows: Iterable[Row], also: Fill | None = None
    ) -> None:
        """Store new messages, make them due, and log them; ``also``'s writes in the same
        transaction."""
        batch = [(msg, _json.dumps(msg.record())) for msg in messages]
        logged = await self._encode_rows(rows)
        fresh = self._fresh
        now = [m for m, _ in batch if m.due == m.created_at]  # due at once
        # Taken by the engine: stored claimed (in flight since they were created), so no
        # read of the due list finds them and no second write claims them.
        hand_over = self.hand_over
        taken, ticket = hand_over.take(now) if hand_over is not None and now else ([], 0)
        claimed = {m.id for m in taken}

        def fill(w: Writes) -> None:
            for msg, record in batch:
                w.pipe.hset(self.keyspace.message(msg.id), mapping={"r": record, "b": msg.body})
                if msg.id in claimed:
                    w.zadd(self._due, msg.id, _CLAIMED + msg.created_at)
                elif msg.due >= 0:
                    w.zadd(self._due, msg.id, msg.due)
                w.zadd(self.keyspace.pending(msg.user), msg.id, msg.created_at)
            if also is not None:
                also(w)
            self._log(w, logged)

        # Known before the write lands: the claim that finds them on the due list comes after.
        kept = [m for m in now if m.id not in claimed and len(fresh) < _FRESH_MAX]
        fresh.update((m.id, m) for m in kept)
        try:
            await self._batch.run(fill)
        except BaseException:
            for msg in kept:
                fresh.pop(msg.id, None)
            if taken and hand_over is not None:
                hand_over.release(taken, ticket)
            raise
        if taken and hand_over is not None:
            hand_over.handed(taken, ticket)
        if logged[1]:
            await self.bodies.trim()

    async def get(self, message_id: str) -> Message | None:
        fields = await self.redis.hmget(self.keyspace.message(message_id), _MESSAGE_FIELDS)
        return await self._decode(*fields)

    async def get_many(self, ids: list[str]) -> list[Message | None]:
        """Several messages in one round trip, in the order of ``ids``."""
        pipe = self.redis.pipeline(transaction=False)
        for message_id in ids:
            pipe.hmget(self.keyspace.message(message_id), _MESSAGE_FIELDS)
        replies = await pipe.execute() if ids else []
        return [await self._decode(*fields) for fields in replies]

    async def _decode(
        self, record: bytes | None, body: bytes | None, ref: bytes | None
    ) -> Message | None:
        """A message from its hash's fields; a finished one's big body from the budget."""
        if record is None:
            return None
        msg = Message.from_record(_json.loads(record), body or b"")
        if ref is not None:
            data = (await self.bodies.fetch(msg.user, [ref.decode()]))[ref.decode()]
            msg.body = data or b""
            msg.body_dropped = data is None
        return msg

    async def _write_record(
        self, msg: Message, rows: Iterable[Row], also: Callable[[Writes], None] | None = None
    ) -> None:
        """Write back ``msg``'s record with log rows, and ``also``'s writes in the same
        transaction. Every record write goes through here: it drops the hand-over copy."""
        self._fresh.pop(msg.id, None)
        key = self.keyspace.message(msg.id)
        record, logged = _json.dumps(msg.record()), await self._encode_rows(rows)

        def fill(w: Writes) -> None:
            w.pipe.hset(key, "r", record)
            if also is not None:
                also(w)
            self._log(w, logged)

        await self._batch.run(fill)
        if logged[1]:
            await self.bodies.trim()

    async def claim_due(
        self, now_ms: int, limit: int, mark: Callable[[list[str]], None] | None = None
    ) -> tuple[list[Message], int | None]:
        """Take up to ``limit`` messages due by ``now_ms`` and mark them in flight; also the
        next due time after them (``now_ms`` or earlier when more are due already).

        ``mark`` hears the chosen ids before they are claimed, so that a cancel arriving
        meanwhile is handled as a cancel of an attempt in flight.
        """
        floor = self._due_floor
        if floor is not None and floor > now_ms:  # nothing is due yet: no read
            return [], None if floor == _NONE_WAITING else int(floor)
        version, self._due_floor = self._due_version, None
        found = await self.redis.zrangebyscore(
            self._due, "-inf", _WAITING, start=0, num=limit + 1, withscores=True
        )
        ids = [member for member, score in found[:limit] if score <= now_ms]
        after = int(found[len(ids)][1]) if len(found) > len(ids) else None
        if version == self._due_version:  # else a due time was written meanwhile: read again
            self._due_floor = _NONE_WAITING if after is None else after
        if not ids:
            return [], after
        if mark is not None:
            mark([i.decode() for i in ids])

        known = [self._fresh.pop(i.decode(), None) for i in ids]
        unknown = [i for i, msg in zip(ids, known, strict=True) if msg is None]

        def fill(w: Writes) -> None:
            # XX: a message finished (canceled) since the read above stays off the list.
            for message_id in ids:
                w.zadd(self._due, message_id.decode(), _CLAIMED + now_ms, xx=True)
            for message_id in unknown:
                w.pipe.hmget(self.keyspace.message(message_id.decode()), ["r", "b"])

        try:
            replies = await self._batch.run(fill)
        except BaseException:
            self._due_floor = None  # the ids read may still be due
            raise
        claimed = [msg for msg in known if msg is not None]
        stray = []
        for message_id, (record, body) in zip(unknown, replies, strict=True):
            if record is None:
                stray.append(message_id)
                continue
            msg = Message.from_record(_json.loads(record), body or b"")
            if msg.final_at is None:
                claimed.append(msg)
        if stray:
            await self.redis.zrem(self._due, *stray)
        return claimed, after

    async def next_due(self) -> int | None:
        first = await self.redis.zrangebyscore(
            self._due, "-inf", _WAITING, start=0, num=1, withscores=True
        )
        return int(first[0][1]) if first else None

    async def reschedule(self, msg: Message, rows: Iterable[Row] = ()) -> None:
        """Put an in-flight (or parked) message back on the due list at ``msg.due``."""
        due, retrying = msg.due, msg.state == State.RETRY

        def also(w: Writes) -> None:
            w.zadd(self._due, msg.id, due)
            if retrying:
                w.pipe.sadd(self.keyspace.retrying(msg.user), msg.id)

        await self._write_record(msg, rows, also)

    async def park(self, msg: Message, rows: Iterable[Row] = ()) -> None:
        """Take a message off the due list (in flight or not); a queue or flow key holds it."""
        await self._write_record(msg, rows, lambda w: w.zrem(self._due, msg.id))

    async def finish(self, msg: Message, rows: Iterable[Row], grace_ms: int) -> None:
        """Record a final state; the message stays readable for ``grace_ms``, then expires.
        A big body is kept for the grace within the body budget, as log rows' bodies are."""
        # Forgotten by the upkeep, not by a TTL: one folded ZADD for the batch instead of a
        # PEXPIRE a message.
        forget_at = int(time.time() * 1_000) + grace_ms
        key = self.keyspace.message(msg.id)
        stored: list[tuple[str, bytes]] = []
        ref: str | None = None
        if len(msg.body) > INLINE:
            ref, body_key, fresh = self.bodies.claim(msg.user, msg.body)
            if fresh:
                stored.append((body_key, msg.body))
                await self.bodies.ready()

        def also(w: Writes) -> None:
            w.zadd(self._finished, msg.id, forget_at)
            w.zrem(self._due, msg.id)
            w.zrem(self.keyspace.pending(msg.user), msg.id)
            if msg.retried:
                w.pipe.srem(self.keyspace.retrying(msg.user), msg.id)
            if ref is not None:
                w.pipe.hset(key, "bref", ref)
                w.pipe.hdel(key, "b")
                self.bodies.write(w, stored)

        await self._write_record(msg, rows, also)
        if stored:
            await self.bodies.trim()

    async def pending_ids(self, user: str) -> list[str]:
        return [i.decode() for i in await self.redis.zrange(self.keyspace.pending(user), 0, -1)]

    async def waiting_index(
        self, user: str
    ) -> tuple[list[str], list[int | None], set[str], set[str]]:
        """The user's messages that are not final, oldest first, when each is next due, which
        are claimed (in flight, whether or not their attempt has started) and which wait for
        a retry: their states without reading a record."""
        ids = await self.pending_ids(user)
        dues: list[int | None] = []
        claimed: set[str] = set()
        # A read per thousand: in memory each read holds the event loop, and other API
        # calls go in between.
        for start in range(0, len(ids), 1_000):
            chunk = ids[start : start + 1_000]
            scores = await self.redis.zmscore(self._due, chunk)
            for message_id, score in zip(chunk, scores, strict=True):
                if score is not None and score >= _CLAIMED:
                    claimed.add(message_id)
                dues.append(None if score is None or score >= _CLAIMED else int(score))
        retrying = await self.redis.smembers(self.keyspace.retrying(user))
        return ids, dues, claimed, {i.decode() for i in retrying}

    async def move_due(self, message_id: str, due_ms: int) -> bool:
        """Make a message waiting on the due list come due at ``due_ms`` (moved, never copied).

        False when it is not waiting there: in flight, held by a queue, final or unknown.
        """
        score = await self.redis.zscore(self._due, message_id)
        if score is None or score >= _CLAIMED:
            return False
        msg = await self.get(message_id)
        if msg is None:
            return False
        msg.due = due_ms
        await self._write_record(msg, (), lambda w: w.zadd(self._due, message_id, due_ms, xx=True))
        return True

    async def due_times(self, ids: list[str]) -> list[int | None]:
        """When each message is next due, or None when it is not on the due list."""
        if not ids:
            return []
        scores = await self.redis.zmscore(self._due, ids)
        return [None if s is None or s >= _CLAIMED else int(s) for s in scores]

    async def is_in_flight(self, message_id: str) -> bool:
        score = await self.redis.zscore(self._due, message_id)
        return score is not None and score >= _CLAIMED

    async def purge_user(self, user: str) -> None:
        """Delete every message and key of ``user`` (a test's namespace when it ends), and
        its members of the shared indexes."""
        await self._batch.drain()
        for companion in (self.schedules, self.queues, self.flow_control):
            await companion.purge(user)
        self._logs.forget(self.keyspace.logs(user))
        self.bodies.forget_recent()
        ids = await self.pending_ids(user)
        for message_id in ids:
            self._fresh.pop(message_id, None)
        self._due_floor = None
        keys = [
            k async for k in self.redis.scan_iter(match=self.keyspace.of_user(user), count=1_000)
        ]
        # The user's waiter deadlines sit in the shared index of workflow waits.
        deadlines = [
            m async for m in self.redis.zscan_iter(self.keyspace.waits, match=f"{user}\n*")
        ]
        pipe = self.redis.pipeline(transaction=False)
        if ids:
            pipe.zrem(self._due, *ids)
            pipe.delete(*(self.keyspace.message(i) for i in ids))
        if keys:
            pipe.delete(*keys)
        if deadlines:
            pipe.zrem(self.keyspace.waits, *(member for member, _ in deadlines))
        await pipe.execute()

    async def claimed_before(self, when_ms: int) -> list[str]:
        """Ids claimed (in flight) by a claim made before ``when_ms``."""
        found = await self.redis.zrangebyscore(self._due, _CLAIMED, f"({_CLAIMED + when_ms}")
        return [i.decode() for i in found]

    async def unclaim(self, ids: list[str], due_ms: int) -> None:
        """Make claimed messages due again at ``due_ms`` (a claim no attempt holds)."""
        if ids:
            await self._batch.run(lambda w: _due_again(w, self._due, ids, due_ms))

    async def recover(self, now_ms: int) -> int:
        """After a crash, whatever was in flight is due again (at-least-once)."""
        upgraded = await self._upgrade(now_ms)
        found = await self.redis.zrangebyscore(self._due, _CLAIMED, "+inf")
        ids = [i.decode() for i in found]
        if ids:
            await self._batch.run(lambda w: _due_again(w, self._due, ids, now_ms))
        return len(ids) + upgraded

    async def _upgrade(self, now_ms: int) -> int:
        """Bring a store an older emulator wrote to the current layout (``SCHEMA``); the
        number of messages in flight it made due. A store without the key is schema 1."""
        raw = await self.redis.get(self.keyspace.schema)
        version = int(raw) if raw is not None else 1
        if version > SCHEMA:
            raise RuntimeError(
                f"the store under {self.keyspace.prefix!r} has key layout {version}, written by a "
                f"newer qstash-emulator; this one knows layouts up to {SCHEMA}: upgrade it, "
                "or use another --redis-url or key prefix"
            )
        if version == SCHEMA:
            return 0
        # 1 -> 2: the ids in flight lived in a key of their own; now they are on the due list.
        # 2 -> 3: nothing to move (records of either layout are read as they are).
        legacy = [i.decode() for i in await self.redis.zrange(self.keyspace.legacy_inflight, 0, -1)]

        def fill(w: Writes) -> None:
            for message_id in legacy:
                w.zadd(self._due, message_id, now_ms)
            w.pipe.delete(self.keyspace.legacy_inflight)
            w.pipe.set(self.keyspace.schema, SCHEMA)

        await self._batch.run(fill)
        return len(legacy)

    # Deduplication ------------------------------------------------------------------------

    async def claim_dedup(
        self, user: str, dedup_key: str, message_id: str, now_ms: int, window_ms: int
    ) -> str | None:
        """Remember ``dedup_key`` for ``message_id``; returns the earlier id for a duplicate."""
        key = self.keyspace.dedup(user, dedup_key)
        value = f"{message_id}|{now_ms + window_ms}".encode()
        if await self.redis.set(key, value, nx=True, px=max(1, window_ms)):
            return None
        existing = await self.redis.get(key)
        if existing is not None:
            earlier, _, expires = existing.decode().partition("|")
            if int(expires) > now_ms:
                return str(earlier)
        await self.redis.set(key, value, px=max(1, window_ms))
        return None

    # Logs ---------------------------------------------------------------------------------

    async def _encode_rows(self, rows: Iterable[Row]) -> Logged:
        """Rows as the log stores them (long bodies taken out), and the bodies to store."""
        if self.row_listeners:
            rows = list(rows)
            for listener in self.row_listeners:
                listener(rows)
        encoded, bodies = [], []
        for row in rows:
            user = row["_user"]
            stored = {k: v for k, v in row.items() if k != "_user"}
            bodies += self.bodies.take_out(user, stored)
            encoded.append((self.keyspace.logs(user), _json.dumps(stored)))
        if bodies:
            await self.bodies.ready()
        return encoded, bodies

    def _log(self, w: Writes, logged: Logged) -> None:
        for key, data in logged[0]:
            w.log(key, data)
        self.bodies.write(w, logged[1])

    async def log_page(
        self,
        user: str,
        cursor: str | None,
        count: int,
        latest_first: bool,
        keep: Callable[[Row], bool],
    ) -> tuple[list[Row], str | None]:
        """Up to ``count`` log rows of ``user`` that ``keep`` accepts from ``cursor`` on,
        with their bodies, and where the next page starts: a page ends early once it holds
        ``PAGE_BYTES`` (docs/behaviour.md#memory)."""

        def pick(raw: bytes) -> tuple[Row, int] | None:
            row: Row = _json.loads(raw)
            return (row, row_bytes(row, raw)) if keep(row) else None

        found, nxt = await scan_rows(
            self.redis,
            self.keyspace.logs(user),
            cursor,
            count,
            latest_first,
            pick,
            lambda kept: kept[1],
            PAGE_BYTES,
        )
        rows = [row for row, _ in found]
        await self.bodies.put_back(user, rows)
        return rows, nxt

    async def append_rows(self, rows: Iterable[Row]) -> None:
        logged = await self._encode_rows(rows)
        await self._batch.run(lambda w: self._log(w, logged))
        if logged[1]:
            await self.bodies.trim()

    # Dead letters -------------------------------------------------------------------------

    async def dlq_add(self, msg: Message, response: dict[str, Any]) -> str:
        meta = {k: v for k, v in response.items() if k != "body"}
        fields: dict[str, bytes] = {
            "r": _json.dumps(msg.record()),
            "b": msg.body,
            "resp": _json.dumps(meta),
        }
        body: bytes = response.get("body", b"")
        stored: list[tuple[str, bytes]] = []
        if len(body) > INLINE:  # kept within the body budget, as log rows' bodies are
            digest, key, fresh = self.bodies.claim(msg.user, body)
            fields["rbref"] = f"{digest}:{len(body)}".encode()
            if fresh:
                stored.append((key, body))
                await self.bodies.ready()
        else:
            fields["rb"] = body

        def fill(w: Writes) -> None:
            w.pipe.xadd(self.keyspace.dlq(msg.user), fields)
            self.bodies.write(w, stored)

        entry_id = (await self._batch.run(fill))[0]
        if stored:
            await self.bodies.trim()
        return str(entry_id.decode())

    async def _letters(
        self, user: str, entries: list[tuple[str, dict[bytes, bytes]]]
    ) -> list[DeadLetter]:
        """Dead letters from their stream entries, response bodies put back."""
        refs = [f[b"rbref"].decode().partition(":")[0] for _, f in entries if b"rbref" in f]
        found = await self.bodies.fetch(user, refs)
        letters = []
        for dlq_id, fields in entries:
            letter = _dead_letter(dlq_id, fields)
            if b"rbref" in fields:
                data = found[fields[b"rbref"].decode().partition(":")[0]]
                if data is None:
                    letter.response["bodyDropped"] = True
                else:
                    letter.response["body"] = data
            letters.append(letter)
        return letters

    async def dlq_get(self, user: str, dlq_id: str) -> DeadLetter | None:
        try:
            entries = await self.redis.xrange(self.keyspace.dlq(user), min=dlq_id, max=dlq_id)
        except aioredis.ResponseError:
            return None
        return (await self._letters(user, [(dlq_id, entries[0][1])]))[0] if entries else None

    async def dlq_all(self, user: str) -> list[DeadLetter]:
        """Every dead letter of ``user``, oldest first."""
        entries = await self.redis.xrange(self.keyspace.dlq(user), "-", "+")
        return await self._letters(user, [(i.decode(), fields) for i, fields in entries])

    async def dlq_page(
        self,
        user: str,
        cursor: str | None,
        count: int,
        latest_first: bool,
        keep: Callable[[DeadLetter], bool],
    ) -> tuple[list[DeadLetter], str | None]:
        """Up to ``count`` dead letters ``keep`` accepts from ``cursor`` on, and where the
        next page starts; a page ends early once it holds ``PAGE_BYTES``."""
        entries, nxt = await scan_stream(
            self.redis,
            self.keyspace.dlq(user),
            cursor,
            count,
            latest_first,
            lambda fields: keep(_dead_letter("", fields)),
            _letter_bytes,
            PAGE_BYTES,
        )
        return await self._letters(user, entries), nxt

    async def dlq_take(self, user: str, dlq_ids: Iterable[str]) -> list[str]:
        """Remove entries, answering the ids this call removed: of calls racing for one
        entry (a retry and a delete, two retries), exactly one gets it."""
        # An id Redis would refuse fails the whole transaction it shares: such an id names
        # no entry, so it is left out.
        ids = [i for i in dict.fromkeys(dlq_ids) if _is_stream_id(i)]
        if not ids:
            return []
        key = self.keyspace.dlq(user)

        def fill(w: Writes) -> None:
            for dlq_id in ids:
                w.pipe.xdel(key, dlq_id)

        removed = await self._batch.run(fill)
        return [dlq_id for dlq_id, n in zip(ids, removed, strict=True) if n]


def decode_dlq(fields: dict[bytes, bytes]) -> tuple[Message, dict[str, Any]]:
    """A dead letter's message and the last response (``body`` the raw bytes)."""
    msg = Message.from_record(_json.loads(fields[b"r"]), fields.get(b"b", b""))
    response = _json.loads(fields.get(b"resp", b"{}"))
    response["body"] = fields.get(b"rb", b"")
    return msg, response


def _dead_letter(dlq_id: str, fields: dict[bytes, bytes]) -> DeadLetter:
    return DeadLetter(dlq_id, *decode_dlq(fields))


def _due_again(w: Writes, key: str, ids: list[str], due_ms: int) -> None:
    """Claimed messages (still on the due list) come due at ``due_ms``."""
    for message_id in ids:
        w.zadd(key, message_id, due_ms, xx=True)


def _letter_bytes(fields: dict[bytes, bytes]) -> int:
    """What a dead letter weighs in an answer: its fields and the body it refers to."""
    ref = fields.get(b"rbref", b":0")
    return sum(len(value) for value in fields.values()) + int(ref.partition(b":")[2])


def _is_stream_id(text: str) -> bool:
    """``<ms>-<seq>`` or ``<ms>`` with both parts below 2**64, as XDEL takes them."""
    parts = text.split("-")
    return 1 <= len(parts) <= 2 and all(
        p.isdigit() and p.isascii() and int(p) < 2**64 for p in parts
    )
