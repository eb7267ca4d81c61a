"""Workflow state in the store: runs, the messages recorded in them, waiters and events.

Their keys (``runs``, ``active``, ``run:{ref}...``, ``wait:{eventId}``, ``lookback:{runId}`` and
the shared ``waits``) are described with every other family in ``store.keyspace``.
"""

from __future__ import annotations

import base64
from typing import Any

from .. import _json
from ..store.bodies import INLINE
from ..store.core import Store
from ..store.group_commit import Fill, Writes
from ..store.keyspace import RunPart
from ._model import Run, RunStep

__all__ = ["RunStore", "Waiter", "ref"]

Waiter = dict[str, Any]


def ref(run_id: str, created_at: int) -> str:
    """The name of one run: its id and creation time."""
    return f"{run_id}@{created_at}"


def _step(data: dict[str, Any], shelved: dict[str, bytes | None]) -> RunStep:
    """A recorded message; ``shelved``: the bodies an ended run keeps in the body budget."""
    dropped = False
    if "bref" in data:
        body = shelved.get(data["bref"][0])
        if body is None:
            dropped = True
            body = _json.dumps(data["k"]) if data.get("k") is not None else b""
    else:
        body = base64.b64decode(data["b"])
    return RunStep(
        data["m"],
        data["c"],
        body,
        data["t"],
        data.get("h", {}),
        data.get("r", 0),
        data.get("u", ""),
        data.get("v", "POST"),
        dropped,
    )


def _skeleton(body: bytes) -> dict[str, Any] | None:
    """What the logs show of a step result once its body is dropped: its short fields."""
    try:
        data = _json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {
        k: v for k, v in data.items() if k != "out" and not (isinstance(v, str) and len(v) > 256)
    }


class RunStore:
    """Reads and writes of workflow state; nothing else in ``workflows`` touches Redis."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.redis: Any = store.redis
        self._waits = store.keyspace.waits
        self.keyspace = store.keyspace

    def _run_key(self, user: str, run_id: str, created_at: int, part: RunPart | None = None) -> str:
        return self.keyspace.run(user, ref(run_id, created_at), part)

    # Runs ---------------------------------------------------------------------------------

    async def get(self, user: str, run_id: str, created_at: int) -> Run | None:
        raw = await self.redis.hget(self._run_key(user, run_id, created_at), "r")
        return Run.from_record(_json.loads(raw)) if raw is not None else None

    async def exists(self, user: str, run_id: str, created_at: int) -> bool:
        return bool(await self.redis.exists(self._run_key(user, run_id, created_at)))

    async def active(self, user: str, run_id: str) -> Run | None:
        """The run with this id that has not ended, if any."""
        created = await self.redis.hget(self.keyspace.active_runs(user), run_id)
        if created is None:
            return None
        run = await self.get(user, run_id, int(created))
        return run if run is not None and not run.ended else None

    def created(self, run: Run, steps: list[RunStep], *, replace: bool = False) -> Fill:
        """The writes that start ``run`` with its first messages (to go with the last one's);
        ``replace``: what the run held so far is forgotten."""
        record, encoded = _json.dumps(run.record()), [self._encode(s) for s in steps]
        key = self._run_key(run.user, run.run_id, run.created_at)
        listed = self._run_key(run.user, run.run_id, run.created_at, "steps")
        status = self._run_key(run.user, run.run_id, run.created_at, "status")

        def fill(w: Writes) -> None:
            if replace:
                w.pipe.delete(listed, status)
            w.pipe.hset(key, "r", record)
            w.pipe.rpush(listed, *encoded)
            w.pipe.hset(self.keyspace.active_runs(run.user), run.run_id, str(run.created_at))
            w.pipe.zadd(
                self.keyspace.runs(run.user), {ref(run.run_id, run.created_at): run.created_at}
            )

        return fill

    def appended(self, run: Run, steps: list[RunStep]) -> Fill:
        """The writes that record ``steps`` in ``run``, after its earlier messages."""
        key = self._run_key(run.user, run.run_id, run.created_at, "steps")
        encoded = [self._encode(s) for s in steps]

        def fill(w: Writes) -> None:
            w.pipe.rpush(key, *encoded)

        return fill

    async def append(self, run: Run, steps: list[RunStep]) -> None:
        await self.store.write(self.appended(run, steps))

    async def save(self, run: Run) -> None:
        """Write back the run's record; an ended run is no longer the active one of its id."""
        record = _json.dumps(run.record())
        key = self._run_key(run.user, run.run_id, run.created_at)
        active = self.keyspace.active_runs(run.user)
        ended = run.ended

        def fill(w: Writes) -> None:
            w.pipe.hset(key, "r", record)
            if ended:
                w.pipe.hdel(active, run.run_id)
                w.pipe.delete(self.keyspace.lookback(run.user, run.run_id))

        await self.store.write(fill)

    async def forget_old(self, user: str, keep: int) -> int:
        """Forget the oldest ended runs past the newest ``keep`` (a run not ended stays);
        how many were forgotten."""
        listed = self.keyspace.runs(user)
        count = int(await self.redis.zcard(listed))
        if count <= keep:
            return 0
        forgotten = 0
        for member in await self.redis.zrange(listed, 0, count - keep - 1):
            run_id, _, created = member.decode().rpartition("@")
            run = await self.get(user, run_id, int(created))
            if run is not None and not run.ended:
                continue
            keys = [
                self._run_key(user, run_id, int(created), part)
                for part in (None, "steps", "status", "waits", "invoked")
            ]

            def fill(w: Writes, keys: list[str] = keys, member: bytes = member) -> None:
                w.pipe.delete(*keys)
                w.pipe.zrem(listed, member)

            await self.store.write(fill)
            forgotten += 1
        return forgotten

    async def steps(self, run: Run) -> list[RunStep]:
        raw = await self.redis.lrange(
            self._run_key(run.user, run.run_id, run.created_at, "steps"), 0, -1
        )
        data = [_json.loads(r) for r in raw]
        refs = [d["bref"][0] for d in data if "bref" in d]
        shelved = await self.store.bodies.fetch(run.user, refs)
        return [_step(d, shelved) for d in data]

    async def shelve(self, run: Run) -> None:
        """Move an ended run's bodies over ``INLINE`` into the body budget (stored once, the
        oldest dropped first), as the logs' are: only the logs read them now. A failed run
        keeps its own, for a resume to send again (docs/behaviour.md#memory)."""
        key = self._run_key(run.user, run.run_id, run.created_at, "steps")
        bodies = self.store.bodies
        stored: list[tuple[str, bytes]] = []
        encoded: list[bytes] = []
        moved = False
        for raw in await self.redis.lrange(key, 0, -1):
            data = _json.loads(raw)
            if len(data.get("b", "")) > INLINE:
                body = base64.b64decode(data.pop("b"))
                digest, body_key, fresh = bodies.claim(run.user, body)
                data["bref"], data["k"] = [digest, len(body)], _skeleton(body)
                moved = True
                if fresh:
                    stored.append((body_key, body))
            encoded.append(_json.dumps(data))
        if not moved:
            return
        await bodies.ready()

        def fill(w: Writes) -> None:
            w.pipe.delete(key)
            w.pipe.rpush(key, *encoded)
            bodies.write(w, stored)

        await self.store.write(fill)
        await bodies.trim()

    async def set_status(self, run: Run, message_id: str, status: dict[str, Any]) -> None:
        key = self._run_key(run.user, run.run_id, run.created_at, "status")
        await self.store.write(lambda w: w.pipe.hset(key, message_id, _json.dumps(status)))

    async def statuses(self, run: Run) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(
            self._run_key(run.user, run.run_id, run.created_at, "status")
        )
        return {k.decode(): _json.loads(v) for k, v in raw.items()}

    async def set_invoked(self, run: Run, message_id: str, info: dict[str, Any]) -> None:
        """What the logs show of the child run behind an Invoke step's result."""
        key = self._run_key(run.user, run.run_id, run.created_at, "invoked")
        await self.store.write(lambda w: w.pipe.hset(key, message_id, _json.dumps(info)))

    async def invoked(self, run: Run) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(
            self._run_key(run.user, run.run_id, run.created_at, "invoked")
        )
        return {k.decode(): _json.loads(v) for k, v in raw.items()}

    async def refs(self, user: str) -> list[tuple[str, int]]:
        """Every run of ``user``, newest first, as (run id, created at)."""
        found = await self.redis.zrevrange(self.keyspace.runs(user), 0, -1)
        out = []
        for member in found:
            name, _, created = member.decode().rpartition("@")
            out.append((name, int(created)))
        return out

    # Waiters and events ----------------------------------------------------------------

    async def add_waiter(self, run: Run, waiter: Waiter) -> None:
        """Register ``waiter`` (``id``, ``eventId``, ``deadline`` ms ...) for ``run``."""
        event_id, waiter_id = waiter["eventId"], waiter["id"]
        data = _json.dumps(waiter)
        member = f"{run.user}\n{event_id}\n{waiter_id}"

        def fill(w: Writes) -> None:
            w.pipe.hset(self.keyspace.event_waiters(run.user, event_id), waiter_id, data)
            w.pipe.sadd(
                self._run_key(run.user, run.run_id, run.created_at, "waits"),
                f"{event_id}\n{waiter_id}",
            )
            w.zadd(self._waits, member, waiter["deadline"])

        await self.store.write(fill)

    async def waiters(self, user: str, event_id: str) -> list[Waiter]:
        raw = await self.redis.hgetall(self.keyspace.event_waiters(user, event_id))
        found = [_json.loads(v) for v in raw.values()]
        found.sort(key=lambda w: (w["createdAt"], w["id"]))
        return found

    async def take_waiter(self, user: str, event_id: str, waiter_id: str) -> Waiter | None:
        """Remove a waiter and return it, or None when another caller took it first."""
        key = self.keyspace.event_waiters(user, event_id)
        raw = await self.redis.hget(key, waiter_id)
        if raw is None or not await self.redis.hdel(key, waiter_id):
            return None
        waiter: Waiter = _json.loads(raw)
        run_key = self._run_key(user, waiter["runId"], waiter["runCreatedAt"], "waits")
        member = f"{user}\n{event_id}\n{waiter_id}"

        def fill(w: Writes) -> None:
            w.pipe.srem(run_key, f"{event_id}\n{waiter_id}")
            w.pipe.zrem(self._waits, member)

        await self.store.write(fill)
        return waiter

    async def run_waiters(self, run: Run) -> list[tuple[str, str]]:
        """The run's waiters as (event id, waiter id)."""
        raw = await self.redis.smembers(
            self._run_key(run.user, run.run_id, run.created_at, "waits")
        )
        pairs = [m.decode().split("\n", 1) for m in raw]
        return [(event_id, waiter_id) for event_id, waiter_id in pairs]

    async def next_deadline(self) -> int | None:
        first = await self.redis.zrange(self._waits, 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    async def due_waiters(self, now_ms: int, limit: int = 1_000) -> list[tuple[str, str, str]]:
        """Waiters whose deadline has passed, as (user, event id, waiter id)."""
        found = await self.redis.zrangebyscore(self._waits, "-inf", now_ms, 0, limit)
        out = []
        for member in found:
            user, event_id, waiter_id = member.decode().split("\n", 2)
            out.append((user, event_id, waiter_id))
        return out

    async def forget_deadline(self, user: str, event_id: str, waiter_id: str) -> None:
        await self.redis.zrem(self._waits, f"{user}\n{event_id}\n{waiter_id}")

    async def keep_event(self, user: str, run_id: str, event_id: str, data: bytes) -> None:
        """An event notified to a run that does not wait for it yet (lookback)."""
        key = self.keyspace.lookback(user, run_id)
        await self.store.write(lambda w: w.pipe.hset(key, event_id, data))

    async def take_event(self, user: str, run_id: str, event_id: str) -> bytes | None:
        key = self.keyspace.lookback(user, run_id)
        raw: bytes | None = await self.redis.hget(key, event_id)
        if raw is None or not await self.redis.hdel(key, event_id):
            return None
        return raw

    @staticmethod
    def _encode(step: RunStep) -> bytes:
        return _json.dumps(
            {
                "m": step.message_id,
                "c": step.call_type,
                "b": _json.b64(step.body),
                "t": step.at,
                "h": step.header,
                "r": step.retries,
                "u": step.url,
                "v": step.method,
            }
        )
