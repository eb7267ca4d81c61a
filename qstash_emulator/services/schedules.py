"""Schedules: publishes repeated on a cron, fired on the emulator's clock.

Each run goes through ``Publisher.publish`` with the schedule's id, so it is logged, signed,
retried and delivered with ``Upstash-Schedule-Id`` like any message; deduplication and
``Upstash-Not-Before`` are dropped because every run must be a fresh message.

Missed runs: when the clock jumps past several run times (a virtual clock, or a server that was
down), the schedule fires once, not once per missed time, and its next time is computed from
now. Production does the same for a trigger it could not deliver on time, and a burst of
identical runs is never what a test wants.

Each schedule is stored (``store.schedules``) with its body, and indexed by its next run time
while it is not paused.

The rules: docs/behaviour.md#schedules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from .._errors import BadRequest, EmulatorError, NotFound
from .._json import text_or_base64
from ..delivery.clock import Clock
from ..delivery.next_time import NextTime
from ..model.destination import is_url, validate_name
from ..model.message import Message, State, new_id
from ..model.options import PublishOptions, option_view
from ..model.views import header_view, redacted
from ..server.config import Settings
from ..store.core import Store
from .publisher import Publisher
from .quotas import require_parallelism, require_room

__all__ = ["Cron", "Schedule", "Schedules", "parse_cron", "schedule_view"]

_DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_FIRE_BATCH = 256
_RUN_STATES = {State.DELIVERED: "SUCCESS", State.FAILED: "FAIL", State.CANCELED: "FAIL"}


@dataclass(frozen=True)
class Cron:
    """A parsed ``Upstash-Cron``: five fields (or a descriptor) in UTC or a ``CRON_TZ`` zone."""

    text: str
    fields: str
    zone: tzinfo

    def next_after(self, now_ms: int) -> int:
        """The first run time strictly after ``now_ms``, in ms."""
        # croniter (and dateutil under it) only matters once a schedule exists: lazy, so it
        # stays out of start-up.
        from croniter import croniter

        start = datetime.fromtimestamp(now_ms / 1_000, self.zone)
        return int(croniter(self.fields, start).get_next(float) * 1_000)


@functools.lru_cache(maxsize=1_024)  # each run of a schedule parses its cron again
def parse_cron(value: str | None, field: str = "Upstash-Cron") -> Cron:
    """Validate a cron expression; whitespace around it is trimmed, as production does."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from croniter import croniter

    if value is None or not value.strip():
        raise BadRequest(f"invalid {field}: a cron expression is required, e.g. */5 * * * *")
    text = value.strip()
    fields = text
    zone: tzinfo = UTC
    head, _, rest = text.partition(" ")
    rest = rest.strip()
    if head.startswith(("CRON_TZ=", "TZ=")):
        name = head.partition("=")[2]
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise BadRequest(f"invalid {field}: unknown time zone {name!r}") from exc
        fields = rest
    parts = fields.split()
    if not (len(parts) == 5 or (len(parts) == 1 and parts[0].lower() in _DESCRIPTORS)):
        raise BadRequest(
            f"invalid {field}: {value.strip()!r} needs 5 fields (minute hour day month weekday)"
        )
    if not croniter.is_valid(fields):
        raise BadRequest(f"invalid {field}: {value.strip()!r} is not a valid cron expression")
    cron = Cron(text, fields.lower() if len(parts) == 1 else fields, zone)
    try:
        cron.next_after(0)
    except Exception as exc:  # croniter gives up on expressions that never match
        raise BadRequest(f"invalid {field}: {value.strip()!r} never matches") from exc
    return cron


@dataclass
class Schedule:
    """One schedule: where and what to publish, its cron, and how its last run went."""

    id: str
    user: str
    destination: str
    cron: str
    created_at: int
    options: dict[str, Any]
    caller_ip: str
    paused: bool = False
    last_time: int | None = None
    next_time: int | None = None
    last_states: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    body: bytes = field(default=b"", repr=False)

    @property
    def opts(self) -> PublishOptions:
        return PublishOptions(**self.options)

    def record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "body"}


def schedule_view(sched: Schedule, default_retries: int) -> dict[str, Any]:
    """The Schedule JSON: keys the Python SDK indexes are always present."""
    opts = sched.opts
    view: dict[str, Any] = {
        "scheduleId": sched.id,
        "cron": sched.cron,
        "destination": sched.destination,
        "createdAt": sched.created_at,
        "method": opts.method,
        "header": header_view(opts.header, opts.redact),
        "retries": opts.retries if opts.retries is not None else default_retries,
        "isPaused": sched.paused,
        "callerIP": sched.caller_ip,
        "callerIp": sched.caller_ip,
    }
    if "body" in opts.redact and sched.body:
        view["body"] = redacted(sched.body)
    else:
        view.update(text_or_base64(sched.body, "body", "bodyBase64"))
    view.update(option_view(opts, "schedule"))
    optional: dict[str, Any] = {
        "lastScheduleTime": sched.last_time,
        "nextScheduleTime": sched.next_time,
        "error": sched.error,
    }
    view.update({k: v for k, v in optional.items() if v})
    if sched.last_states:
        view["lastScheduleStates"] = dict(sched.last_states)
    return view


class Schedules:
    """Schedule storage, the timer that fires them, and the gate that records run results."""

    # Always due again: ``Emulator.run_until_idle`` jumps the clock for it only when bounded.
    recurring = True

    def __init__(
        self, store: Store, settings: Settings, clock: Clock, publisher: Publisher
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.publisher = publisher
        self._lock = asyncio.Lock()
        # The earliest run time: writes make it stale.
        self._next = NextTime(lambda: self.store.schedules.next_time())
        # Hear each schedule created or replaced (a contract's record of them).
        self.created: list[Callable[[Schedule], None]] = []
        store.due_listeners.append(self._due_written)

    def _due_written(self, index: str, when_ms: int) -> None:
        """A run time was stored: the cached earliest one is stale (before the engine looks)."""
        if index == self.store.keyspace.schedule_due:
            self._next.stale()

    def reset(self) -> None:
        """Forget the cached next run time after the store was flushed."""
        self._next.stale()

    def forget_user(self, user: str) -> None:
        """The cached next run time may have been one of the user's schedules."""
        self._next.stale()

    # Storage --------------------------------------------------------------------------------

    async def get(self, user: str, schedule_id: str) -> Schedule | None:
        stored = await self.store.schedules.get(user, schedule_id)
        if stored is None:
            return None
        record, body = stored
        return Schedule(**record, body=body)

    async def for_user(self, user: str) -> list[Schedule]:
        found = [await self.get(user, i) for i in await self.store.schedules.ids(user)]
        return [s for s in found if s is not None]

    async def _save(self, sched: Schedule) -> None:
        await self.store.schedules.put(
            sched.user,
            sched.id,
            sched.created_at,
            sched.record(),
            sched.body,
            None if sched.paused else sched.next_time,
        )
        self._next.stale()

    # Management -----------------------------------------------------------------------------

    async def create(
        self, user: str, destination: str, opts: PublishOptions, body: bytes, caller_ip: str
    ) -> str:
        """Create a schedule, or replace the one with ``opts.schedule_id`` entirely."""
        cron = parse_cron(opts.cron)
        if not is_url(destination):
            validate_name(destination, "destination")
            resolve = self.publisher.resolve_group
            if resolve is not None and await resolve(user, destination) is None:
                raise NotFound(f"url group {destination!r} not found")
        if opts.flow is not None:
            require_parallelism(
                "Upstash-Flow-Control-Value", opts.flow["parallelism"], self.settings.limits
            )
        run = dataclasses.replace(
            opts, dedup_id=None, content_dedup=False, not_before_ms=None, cron=cron.text
        )
        now = self.clock.now_ms()
        async with self._lock:
            old = await self.get(user, opts.schedule_id) if opts.schedule_id else None
            if old is None:
                limits = self.settings.limits
                count = await self.store.schedules.count(user)
                require_room("schedules", count, limits.max_schedules, limits.name)
            sched = Schedule(
                id=opts.schedule_id or new_id("scd_"),
                user=user,
                destination=destination,
                cron=cron.text,
                created_at=old.created_at if old else now,
                options=dataclasses.asdict(run),
                caller_ip=caller_ip,
                next_time=cron.next_after(now),
                last_time=old.last_time if old else None,
                last_states=old.last_states if old else {},
                body=body,
            )
            await self._save(sched)
        for listener in self.created:
            listener(sched)
        return sched.id

    async def delete(self, user: str, schedule_id: str) -> bool:
        async with self._lock:
            deleted = await self.store.schedules.remove(user, schedule_id)
            self._next.stale()
        return bool(deleted)

    async def set_paused(self, user: str, schedule_id: str, paused: bool) -> bool:
        """Pause or resume (idempotent); a resumed schedule runs at its next cron time."""
        async with self._lock:
            sched = await self.get(user, schedule_id)
            if sched is None:
                return False
            if sched.paused != paused:
                sched.paused = paused
                sched.next_time = (
                    None if paused else parse_cron(sched.cron).next_after(self.clock.now_ms())
                )
                await self._save(sched)
            return True

    async def trigger(self, user: str, schedule_id: str, moved: bool = False) -> list[str] | None:
        """Run a schedule now; returns the new message ids. By default its next cron time
        stays as it is; ``moved`` makes this run *be* the next one (never a copy), so the run
        after is the cron's time after the one it replaces."""
        async with self._lock:
            sched = await self.get(user, schedule_id)
            if sched is None:
                return None
            replaces = sched.next_time if moved else None
            await self._run(sched, self.clock.now_ms(), replaces=replaces)
            return list(sched.last_states)

    # Timer ----------------------------------------------------------------------------------

    async def next_due(self) -> int | None:
        return await self._next.get()

    async def fire(self, now_ms: int) -> None:
        """Run up to ``_FIRE_BATCH`` of the schedules due, together: the engine delivers
        between batches, so thousands due at one minute do not hold up every delivery (and
        their own) until the last is published."""
        due = await self.store.schedules.due(now_ms, _FIRE_BATCH)
        async with self._lock:
            await asyncio.gather(*(self._fire(user, i, now_ms) for user, i in due))

    async def _fire(self, user: str, schedule_id: str, now_ms: int) -> None:
        sched = await self.get(user, schedule_id)
        if sched is None or sched.paused:
            await self.store.schedules.not_due(user, schedule_id)
            self._next.stale()
        elif sched.next_time is None or sched.next_time <= now_ms:  # else replaced meanwhile
            await self._run(sched, now_ms)

    async def _run(self, sched: Schedule, now: int, replaces: int | None = None) -> None:
        """Publish one run, record it, and set the next run time from ``now`` (or from the
        run time it ``replaces``, when that is later)."""
        opts = sched.opts
        try:
            result = await self.publisher.publish(
                sched.user,
                sched.destination,
                opts,
                sched.body,
                sched.caller_ip,
                queue_name=opts.queue_name,
                schedule_id=sched.id,
            )
        except EmulatorError as exc:
            sched.error, sched.last_states = exc.message, {}
        else:
            results = result if isinstance(result, list) else [result]
            sched.error = None
            sched.last_states = {r["messageId"]: "IN_PROGRESS" for r in results if "messageId" in r}
        sched.last_time = now
        if not sched.paused:
            try:
                sched.next_time = parse_cron(sched.cron).next_after(max(now, replaces or now))
            except Exception as exc:  # a cron with no later match must not wedge the engine
                sched.next_time, sched.error = None, f"cron has no later run time: {exc}"
        await self._save(sched)

    # Gate: the outcome of each run's messages -----------------------------------------------

    async def admit(self, msg: Message) -> bool:
        return True

    async def attempt_done(self, msg: Message) -> None:
        return None

    async def finished(self, msg: Message) -> None:
        if msg.schedule_id is None or msg.kind != "message" or msg.state not in _RUN_STATES:
            return
        async with self._lock:
            sched = await self.get(msg.user, msg.schedule_id)
            if sched is None or msg.id not in sched.last_states:
                return
            sched.last_states[msg.id] = _RUN_STATES[msg.state]
            await self._save(sched)
