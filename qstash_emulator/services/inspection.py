"""Looking inside without touching: messages by state, delivery attempts, schedule run times.

Reading never changes what the engine will do next (unlike ``GET /v2/dlq`` paging or a log
query, nothing here is consumed). The one control, ``run_now``, moves an item's due time; it
never copies a message, so nothing is delivered twice.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from .. import _json
from ..delivery.clock import Clock
from ..delivery.engine import Engine
from ..delivery.records import Attempt, AttemptRequest, AttemptResponse
from ..delivery.signing import check_signature
from ..model.headers import H
from ..model.message import FINAL_STATES, Message, State
from ..store import core
from ..store.core import Store
from .dead_letters import view
from .schedules import Schedules, parse_cron

__all__ = ["STATES", "History", "Inspector", "Waiting", "WaitingState", "format_ms"]

# A request or response body this long counts against the body budget.
_HEAVY = 1_024
# The states a message that is not final can be in, as the inspection API names them.
WaitingState = Literal["pending", "delayed", "retrying", "in_flight", "queued"]
STATES: tuple[WaitingState, ...] = get_args(WaitingState)


def format_ms(ms: int | None) -> str:
    """A Unix-ms time as ISO 8601 UTC, to the millisecond."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1_000, UTC).isoformat(timespec="milliseconds")


def _span(ms: int) -> str:
    seconds = ms / 1_000
    if abs(seconds) < 60:
        return f"{seconds:g}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return "".join(parts) + (f"{secs}s" if secs else "")


@dataclass(frozen=True)
class Waiting:
    """A message that is not final yet, with when it is next due."""

    message: Message
    state: WaitingState
    due: int | None  # emulator clock, ms; None while in flight or held by a queue

    @property
    def message_id(self) -> str:
        return self.message.id

    @property
    def url(self) -> str:
        return self.message.url

    def describe(self, now_ms: int) -> str:
        msg = self.message
        what = f"{msg.id} {msg.options.method} {msg.url}"
        if msg.kind != "message":
            what += f" ({msg.kind.replace('_', ' ')} of {msg.source_message_id})"
        state = self.state.replace("_", " ")
        if self.state == "retrying":
            state += f" (retried {msg.retried} of {msg.max_retries})"
        if msg.queue_name:
            state += f" in queue {msg.queue_name}"
        if self.due is None:
            return f"{what}: {state}"
        delta = self.due - now_ms
        when = f"in {_span(delta)}" if delta > 0 else "now"
        return f"{what}: {state}, next attempt {when} (at {format_ms(self.due)})"

    def view(self) -> dict[str, Any]:
        msg = self.message
        out: dict[str, Any] = {
            "messageId": msg.id,
            "state": self.state,
            "url": msg.url,
            "method": msg.options.method,
            "kind": msg.kind,
            "retried": msg.retried,
            "maxRetries": msg.max_retries,
            "createdAt": msg.created_at,
            "notBefore": msg.not_before,
            "nextDeliveryTime": self.due,
        }
        for key, value in (
            ("queueName", msg.queue_name),
            ("scheduleId", msg.schedule_id),
            ("sourceMessageId", msg.source_message_id),
        ):
            if value:
                out[key] = value
        return out


def _state(due: int | None, retrying: bool, in_flight: bool, now: int) -> WaitingState:
    """Where a message that is not final stands: off the due list it is in flight or held by
    a queue; on it, a retry or a first attempt, due now or later."""
    if due is None:
        return "in_flight" if in_flight else "queued"
    if retrying:
        return "retrying"
    return "delayed" if due > now else "pending"


class History:
    """The most recent delivery attempts of each user (bounded), as engine listeners see them.

    Their bodies together stay within ``body_budget`` bytes: past it, the oldest attempts'
    bodies are dropped, in place, so every holder of the attempt (``Emulator.attempts``, the
    pytest plugin's records) sees them dropped and their memory is freed."""

    def __init__(self, per_user: int = 1_000, body_budget: int = 256 << 20) -> None:
        self._per_user = per_user
        self._budget = body_budget
        self._by_user: dict[str, deque[Attempt]] = {}
        self._added: dict[str, int] = {}  # attempts ever added per user: positions for cursors
        self._heavy: deque[tuple[Attempt, int]] = deque()  # oldest first, with body bytes
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, attempt: Attempt) -> None:
        size = sum(len(part.body) for part in _heavy_parts(attempt))
        with self._lock:
            queue = self._by_user.get(attempt.user)
            if queue is None:
                queue = self._by_user[attempt.user] = deque(maxlen=self._per_user)
            queue.append(attempt)
            self._added[attempt.user] = self._added.get(attempt.user, 0) + 1
            if size:
                self._heavy.append((attempt, size))
                self._bytes += size
            while self._bytes > self._budget and self._heavy:
                oldest, counted = self._heavy.popleft()
                self._bytes -= counted
                for part in _heavy_parts(oldest):
                    part.drop_body()

    @property
    def body_bytes(self) -> int:
        """Bytes of the bodies counted against the budget now."""
        return self._bytes

    def of(self, user: str, message_id: str | None = None) -> list[Attempt]:
        with self._lock:
            attempts = list(self._by_user.get(user, ()))
        if message_id is not None:
            attempts = [a for a in attempts if message_id in (a.message_id, a.source_message_id)]
        return attempts

    def page(
        self, user: str, message_id: str | None, start: int, count: int, max_bytes: int
    ) -> tuple[list[Attempt], int | None]:
        """Up to ``count`` attempts of ``user`` (of one message if given) from position
        ``start`` on, oldest first, ending early once their bodies weigh ``max_bytes``; and
        the position the next page starts at (None at the end)."""
        with self._lock:
            queue = self._by_user.get(user, deque())
            first = self._added.get(user, 0) - len(queue)
            attempts = list(queue)
        found: list[Attempt] = []
        weight = 0
        for at in range(max(start - first, 0), len(attempts)):
            attempt = attempts[at]
            if message_id is not None and message_id not in (
                attempt.message_id,
                attempt.source_message_id,
            ):
                continue
            if len(found) == count or weight >= max_bytes:
                return found, first + at
            found.append(attempt)
            weight += len(attempt.request.body)
            if attempt.response is not None:
                weight += len(attempt.response.body)
        return found, None

    def reset(self) -> None:
        with self._lock:
            self._by_user.clear()
            self._added.clear()
            self._heavy.clear()
            self._bytes = 0

    def forget_user(self, user: str) -> None:
        with self._lock:
            self._by_user.pop(user, None)
            self._added.pop(user, None)
            kept = [(a, n) for a, n in self._heavy if a.user != user]
            self._heavy = deque(kept)
            self._bytes = sum(n for _, n in kept)


def _heavy_parts(attempt: Attempt) -> list[AttemptRequest | AttemptResponse]:
    """The request and response whose bodies count against the budget: small bodies stay,
    bounded by the number of attempts kept."""
    parts: list[AttemptRequest | AttemptResponse] = [attempt.request]
    if attempt.response is not None:
        parts.append(attempt.response)
    return [part for part in parts if len(part.body) >= _HEAVY]


def attempt_view(attempt: Attempt, keys: tuple[str, str] | None = None) -> dict[str, Any]:
    """An attempt as JSON for ``/_emulator/attempts``; with the user's (current, next)
    signing keys, also whether its signature verifies as a receiver would check it then."""
    out: dict[str, Any] = {
        "messageId": attempt.message_id,
        "kind": attempt.kind,
        "retried": attempt.retried,
        "maxRetries": attempt.max_retries,
        "request": {
            "method": attempt.request.method,
            "url": attempt.request.url,
            "headers": attempt.request.headers,
            **_body_view(attempt.request),
        },
        "outcome": attempt.outcome,
        "reason": attempt.reason,
        "nextDelayMs": attempt.next_delay_ms,
        "delaySource": attempt.delay_source,
        "startedAt": attempt.started_at,
        "finishedAt": attempt.finished_at,
        "wallStartedAt": int(attempt.wall_started * 1_000),
        "wallFinishedAt": int(attempt.wall_finished * 1_000),
    }
    if attempt.response is not None:
        out["response"] = {
            "status": attempt.response.status,
            "headers": attempt.response.headers,
            **_body_view(attempt.response),
        }
    if attempt.error is not None:
        out["error"] = attempt.error
    if attempt.source_message_id:
        out["sourceMessageId"] = attempt.source_message_id
    if keys is not None:
        out["signature"] = _signature_view(attempt, keys)
    return out


def _body_view(part: AttemptRequest | AttemptResponse) -> dict[str, Any]:
    if part.body_dropped:
        return {"bodyDropped": True}
    return _json.text_or_base64(part.body, "body", "bodyBase64")


def _signature_view(attempt: Attempt, keys: tuple[str, str]) -> dict[str, Any]:
    request = attempt.request
    if request.body_dropped:  # the body claim cannot be checked any more
        return {"valid": None, "reason": "the body was dropped (over the body budget)"}
    check = check_signature(
        request.headers.get(H.SIGNATURE),
        keys,
        request.url,
        request.body,
        int(attempt.wall_started),
    )
    view: dict[str, Any] = {"valid": check.ok}
    if check.key is not None:
        view["key"] = "current" if check.key == keys[0] else "next"
    if not check.ok:
        view["failedClaim"] = check.failed_claim
        view["reason"] = check.reason
    return view


class Inspector:
    """Read-only views of one user's messages, dead letters, attempts and schedules."""

    def __init__(
        self, store: Store, clock: Clock, engine: Engine, history: History, schedules: Schedules
    ) -> None:
        self.store = store
        self.clock = clock
        self.engine = engine
        self.history = history
        self.schedules = schedules

    async def waiting(self, user: str, states: Collection[str] | None = None) -> list[Waiting]:
        """The user's messages that are not final, oldest first, optionally by state."""
        store = self.store
        ids = await store.pending_ids(user)
        dues = await store.due_times(ids)
        now = self.clock.now_ms()
        found = []
        for message_id, due in zip(ids, dues, strict=True):
            msg = await store.get(message_id)
            if msg is None or msg.user != user:
                continue
            in_flight = due is None and await store.is_in_flight(message_id)
            state = _state(due, msg.state == State.RETRY, in_flight, now)
            if states is None or state in states:
                found.append(Waiting(msg, state, due))
        return found

    async def one(self, user: str, message_id: str) -> Waiting | None:
        """One of the user's messages with its state as ``waiting`` names it; None once it is
        final (or unknown, or another user's)."""
        store = self.store
        msg = await store.get(message_id)
        if msg is None or msg.user != user or msg.state in FINAL_STATES:
            return None
        (due,) = await store.due_times([message_id])
        in_flight = due is None and await store.is_in_flight(message_id)
        state = _state(due, msg.state == State.RETRY, in_flight, self.clock.now_ms())
        return Waiting(msg, state, due)

    async def page(
        self, user: str, states: Collection[str] | None, offset: int, count: int
    ) -> tuple[list[Waiting], int, dict[WaitingState, int]]:
        """One page of ``waiting``, the number of messages the filter matches, and how many
        are in each state. The states come from indexes (due times and claims, the retrying
        set), never from records: only the page's records are read."""
        ids, dues, claimed, retrying = await self.store.waiting_index(user)
        now = self.clock.now_ms()
        counts = dict.fromkeys(STATES, 0)
        matched: list[tuple[str, WaitingState, int | None]] = []
        for message_id, due in zip(ids, dues, strict=True):
            state = _state(due, message_id in retrying, message_id in claimed, now)
            counts[state] += 1
            if states is None or state in states:
                matched.append((message_id, state, due))
        chosen = matched[offset : offset + count]
        records = await self.store.get_many([i for i, _, _ in chosen])
        found = [
            Waiting(msg, state, due)
            for (_, state, due), msg in zip(chosen, records, strict=True)
            if msg is not None and msg.user == user
        ]
        return found, len(matched), counts

    async def dead_letters(self, user: str) -> list[dict[str, Any]]:
        """Every DLQ entry of the user, oldest first, in the ``/v2/dlq`` shape."""
        return [view(letter) for letter in await self.store.dlq_all(user)]

    def attempts(self, user: str, message_id: str | None = None) -> list[Attempt]:
        return self.history.of(user, message_id)

    def attempt_page(
        self, user: str, message_id: str | None, start: int, count: int
    ) -> tuple[list[Attempt], int | None]:
        """A page of attempts as ``History.page`` makes it, within the store's page byte cap
        (docs/behaviour.md#memory)."""
        return self.history.page(user, message_id, start, count, core.PAGE_BYTES)

    async def schedule_times(self, user: str, schedule_id: str, count: int) -> list[int] | None:
        """The next ``count`` run times of a schedule on the emulator's clock; None if unknown."""
        sched = await self.schedules.get(user, schedule_id)
        if sched is None:
            return None
        if sched.paused:
            return []
        cron = parse_cron(sched.cron)
        times = [sched.next_time or cron.next_after(self.clock.now_ms())]
        while len(times) < count:
            times.append(cron.next_after(times[-1]))
        return times[:count]

    async def run_now(self, user: str, item_id: str) -> str:
        """Make a delayed or retrying message, or a schedule's next run, due now.

        Returns what moved ("message" or "schedule"); raises ``LookupError`` saying why not.
        """
        store = self.store
        now = self.clock.now_ms()
        msg = await store.get(item_id)
        if msg is not None and msg.user == user:
            if not await store.move_due(item_id, now):
                raise LookupError(
                    f"message {item_id} is not waiting for a delivery time "
                    f"(it is {msg.state.lower()}, in flight or held by a queue)"
                )
            self.engine.notify()
            return "message"
        schedules = self.schedules
        sched = await schedules.get(user, item_id)
        if sched is not None:
            if sched.paused:
                raise LookupError(f"schedule {item_id} is paused")
            await schedules.trigger(user, item_id, moved=True)
            self.engine.notify()
            return "schedule"
        raise LookupError(f"no message or schedule {item_id!r} for this user")
