"""Flow control: per-key parallelism and rate, with a wait list per key.

A key's limits cover every destination that uses it. ``parallelism`` bounds the attempts in
flight; ``rate`` bounds the dispatches per ``period`` window, a window opening at the first
dispatch after the previous one ended. A message over a limit is parked (``store.park``) at the
tail of the key's wait list; it goes back on the due list (``store.reschedule``) when a slot
frees, a window opens (a ``Timer``), or the key is resumed or re-pinned. A released message
holds its slot until its attempt starts, so a newcomer cannot overtake the wait list.

The plan's maximum parallelism also bounds the attempts in flight across all of a user's keys
(``GET /v2/globalParallelism``); messages without a key are not limited.

What is stored (``store.flow_control``): each key's config and rate window, its wait list, and an
index of every key with waiters: when its rate window opens, or ``PARKED`` when only an event
can free it.
Attempts in flight are process state: after a restart nothing is in flight, so every key with
waiters is re-examined once (``_recover``).

The rules: docs/behaviour.md#flow-control.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._errors import NotFound
from ..delivery.clock import Clock
from ..delivery.next_time import NextTime
from ..model.message import FINAL_STATES, Message, State
from ..server.config import Settings
from ..store.core import Store
from ..store.flow_control import PARKED
from .quotas import require_parallelism

__all__ = ["FlowControlKeys", "KeyState"]


@dataclass
class KeyState:
    """One flow-control key: its config (from the latest message, or pinned) and rate window."""

    parallelism: int | None = None
    rate: int | None = None
    period: int = 1  # seconds
    pinned_parallelism: bool = False
    pinned_rate: bool = False
    paused: bool = False
    rate_count: int = 0
    window_start: int = 0  # ms

    def window_end(self) -> int:
        return self.window_start + self.period * 1_000

    def roll(self, now: int) -> None:
        """Open a new rate window if the current one has ended."""
        if now >= self.window_end():
            self.window_start, self.rate_count = now, 0

    def reset_window(self, now: int) -> None:
        self.window_start, self.rate_count = now, 0

    def rate_full(self) -> bool:
        return self.rate is not None and self.rate_count >= self.rate


class FlowControlKeys:
    """The flow-control gate (engine.gates), its window timer (engine.timers) and its API."""

    def __init__(
        self, store: Store, settings: Settings, clock: Clock, notify: Callable[[], None]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._notify = notify
        self._lock = asyncio.Lock()
        # (user, key) -> ids attempting now; ids released from the wait list, not yet started.
        self._active: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self._released: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        # user -> ids holding a slot of the plan's global parallelism (active or released).
        self._global: defaultdict[str, set[str]] = defaultdict(set)
        # user -> keys that stopped releasing because the global limit was reached.
        self._global_blocked: defaultdict[str, set[str]] = defaultdict(set)
        self._recovered = False
        # The earliest wake-up: writes make it stale.
        self._next = NextTime(lambda: self.store.flow_control.next_wake())
        store.due_listeners.append(self._due_written)

    def _due_written(self, index: str, when_ms: int) -> None:
        """A wake-up was stored: the cached earliest one is stale (before the engine looks)."""
        if index == self.store.keyspace.flow_wake:
            self._next.stale()

    def reset(self) -> None:
        """Forget process state after the store was flushed."""
        self._next.stale()
        self._active.clear()
        self._released.clear()
        self._global.clear()
        self._global_blocked.clear()

    def forget_user(self, user: str) -> None:
        """Forget the slots the user's messages held (they are gone from the store)."""
        self._next.stale()
        for slots in (self._active, self._released):
            for slot in [s for s in slots if s[0] == user]:
                del slots[slot]
        self._global.pop(user, None)
        self._global_blocked.pop(user, None)

    # Storage --------------------------------------------------------------------------------

    async def load(self, user: str, key: str) -> KeyState | None:
        stored = await self.store.flow_control.get(user, key)
        return KeyState(**stored) if stored is not None else None

    async def _save(self, user: str, key: str, state: KeyState) -> None:
        await self.store.flow_control.put(user, key, dataclasses.asdict(state))

    async def keys(self, user: str) -> dict[str, KeyState]:
        stored = await self.store.flow_control.all(user)
        return {key: KeyState(**state) for key, state in stored.items()}

    # Publisher hook: the latest message's config updates the key ----------------------------

    async def accepting(self, messages: list[Message]) -> None:
        """Create or update the keys of messages about to be stored (unless pinned)."""
        for msg in messages:
            if msg.flow_key is None:
                continue
            async with self._lock:
                state = await self.load(msg.user, msg.flow_key)
                fresh = state is None
                state = state or KeyState()
                if _apply_config(state, msg) or fresh:
                    await self._save(msg.user, msg.flow_key, state)
                    await self._pump(msg.user, msg.flow_key)

    async def stored(self, messages: list[Message]) -> None:
        """A new message due now takes its key's slot at once if the key has room, as if
        dispatched: it counts in the rate window before the publish is answered, so a call
        the client makes next (a reset, a read of the key) already sees it."""
        now = self.clock.now_ms()
        for msg in messages:
            key = msg.flow_key
            if key is None or msg.due > now or msg.queue_name or msg.schedule_id:
                continue  # a queue or a schedule decides first; a delayed one waits its turn
            slot = (msg.user, key)
            async with self._lock:
                if msg.id in self._active.get(slot, ()) or msg.id in self._released.get(slot, ()):
                    continue  # the engine was quicker
                if await self.store.flow_control.waiting(msg.user, key):
                    continue  # others wait: it joins them through the gate
                state = await self.load(msg.user, key)
                if state is None:
                    continue
                state.roll(now)
                if self._blocked(msg.user, key, state):
                    continue
                state.rate_count += 1
                await self._save(msg.user, key, state)
                self._released[slot].add(msg.id)
                self._global[msg.user].add(msg.id)

    # Gate -----------------------------------------------------------------------------------

    async def admit(self, msg: Message) -> bool:
        key = msg.flow_key
        if key is None:
            return True
        slot = (msg.user, key)
        async with self._lock:
            if msg.id in self._active.get(slot, ()):
                return True
            if msg.id in self._released.get(slot, ()):
                self._released[slot].discard(msg.id)
                if not self._released[slot]:
                    del self._released[slot]
                self._active[slot].add(msg.id)
                return True
            stored, waiting = await self.store.flow_control.get_with_waiting(msg.user, key)
            state = KeyState(**stored) if stored is not None else None
            if state is None:  # stored before a reset or restart lost the key
                state = KeyState()
                _apply_config(state, msg)
            state.roll(self.clock.now_ms())
            if waiting or self._blocked(msg.user, key, state):
                await self.store.park(msg)
                await self.store.flow_control.wait(msg.user, key, msg.id)
                await self._save(msg.user, key, state)
                await self._pump(msg.user, key, state)
                return False
            state.rate_count += 1
            await self._save(msg.user, key, state)
            self._active[slot].add(msg.id)
            self._global[msg.user].add(msg.id)
            return True

    async def attempt_done(self, msg: Message) -> None:
        if msg.flow_key is None:
            return
        slot = (msg.user, msg.flow_key)
        async with self._lock:
            self._active[slot].discard(msg.id)
            self._global[msg.user].discard(msg.id)
            # Keys are unlimited in number: keep no empty entries behind.
            if not self._active[slot]:
                del self._active[slot]
            if not self._global[msg.user]:
                del self._global[msg.user]
            await self._pump(msg.user, msg.flow_key)
            blocked = self._global_blocked.pop(msg.user, set())
            for key in blocked - {msg.flow_key}:
                await self._pump(msg.user, key)

    async def finished(self, msg: Message) -> None:
        """A message ended; one cancelled while waiting or released leaves its place."""
        key = msg.flow_key
        if key is None or msg.state != State.CANCELED:
            return  # delivered or failed: attempt_done already gave the slot back
        slot = (msg.user, key)
        async with self._lock:
            held = msg.id in self._released.get(slot, ())
            if held:
                self._released[slot].discard(msg.id)
                self._global[msg.user].discard(msg.id)
            removed = await self.store.flow_control.unwait(msg.user, key, msg.id)
            if held or removed:
                await self._pump(msg.user, key)

    # Releasing waiters ----------------------------------------------------------------------

    def _in_use(self, user: str, key: str) -> int:
        slot = (user, key)
        return len(self._active.get(slot, ())) + len(self._released.get(slot, ()))

    def _global_full(self, user: str) -> bool:
        return len(self._global.get(user, ())) >= self.settings.limits.max_parallelism

    def _blocked(self, user: str, key: str, state: KeyState) -> bool:
        if state.paused or state.rate_full():
            return True
        if state.parallelism is not None and self._in_use(user, key) >= state.parallelism:
            return True
        if self._global_full(user):
            self._global_blocked[user].add(key)
            return True
        return False

    async def _pump(self, user: str, key: str, state: KeyState | None = None) -> None:
        """Release waiters while the key has room; note when it should be looked at again."""
        waiting = await self.store.flow_control.unwake(
            user, key
        )  # set again below while anyone waits
        self._next.stale()
        if not waiting:
            return
        state = state or await self.load(user, key)
        if state is None:  # the key's user was purged
            return
        now = self.clock.now_ms()
        state.roll(now)
        released = 0
        while not self._blocked(user, key, state):
            message_id = await self.store.flow_control.next_waiter(user, key)
            if message_id is None:
                break
            msg = await self.store.get(message_id)
            if msg is None or msg.state in FINAL_STATES:
                continue
            msg.due = now
            await self.store.reschedule(msg)
            self._released[(user, key)].add(msg.id)
            self._global[user].add(msg.id)
            state.rate_count += 1
            released += 1
        await self._save(user, key, state)
        if not await self.store.flow_control.waiting(user, key):
            await self.store.flow_control.wake_at(user, key, None)
        elif state.rate_full() and not state.paused:
            await self.store.flow_control.wake_at(user, key, state.window_end())
        else:
            await self.store.flow_control.wake_at(user, key, PARKED)
        self._next.stale()  # after the write: a read that overlapped it is not cached
        if released:
            self._notify()

    # Timer: rate windows --------------------------------------------------------------------

    async def next_due(self) -> int | None:
        if not self._recovered:
            await self._recover()
        return await self._next.get()

    async def fire(self, now_ms: int) -> None:
        for user, key in await self.store.flow_control.due(now_ms):
            async with self._lock:
                await self._pump(user, key)

    async def _recover(self) -> None:
        """After a restart nothing is in flight: look at every key with waiters once."""
        self._recovered = True
        await self.store.flow_control.wake_all()
        self._next.stale()

    # Management API -------------------------------------------------------------------------

    async def view(self, user: str, key: str, state: KeyState) -> dict[str, Any]:
        """The FlowControlKey JSON shape."""
        now = self.clock.now_ms()
        expired = now >= state.window_end()
        return {
            "flowControlKey": key,
            "waitListSize": await self.store.flow_control.waiting(user, key),
            "parallelismMax": state.parallelism or 0,
            "parallelismCount": len(self._active.get((user, key), ())),
            "rateMax": state.rate or 0,
            "rateCount": 0 if expired else state.rate_count,
            "ratePeriod": state.period,
            "ratePeriodStart": state.window_start // 1_000,
            "isPaused": state.paused,
            "isPinnedParallelism": state.pinned_parallelism,
            "isPinnedRate": state.pinned_rate,
        }

    async def list_views(self, user: str, search: str = "") -> list[dict[str, Any]]:
        """Every key of the user whose name contains ``search`` (any case), by name."""
        wanted = search.lower()
        keys = await self.keys(user)
        return [
            await self.view(user, key, state)
            for key, state in sorted(keys.items())
            if wanted in key.lower()
        ]

    async def get_view(self, user: str, key: str) -> dict[str, Any]:
        state = await self.load(user, key)
        if state is None:
            raise NotFound(f"flow control key {key!r} not found")
        return await self.view(user, key, state)

    def global_view(self, user: str) -> dict[str, int]:
        return {
            "parallelismMax": self.settings.limits.max_parallelism,
            "parallelismCount": len(self._global.get(user, ())),
        }

    async def pause(self, user: str, key: str, paused: bool) -> None:
        """Stop releasing the key's waiters (a pause creates the key), or start again."""

        def change(state: KeyState, now: int) -> None:
            state.paused = paused

        await self.update(user, key, change, create=paused)

    async def pin(
        self, user: str, key: str, parallelism: int | None, rate: int | None, period: int | None
    ) -> None:
        """Fix parallelism and/or rate+period against the messages' own; no value pins the
        key's current config. A new rate window starts."""
        require_parallelism("parallelism", parallelism, self.settings.limits)
        everything = parallelism is None and rate is None and period is None

        def change(state: KeyState, now: int) -> None:
            if parallelism is not None or everything:
                state.pinned_parallelism = True
                if parallelism is not None:
                    state.parallelism = parallelism
            if rate is not None or period is not None or everything:
                state.pinned_rate = True
                state.rate = rate if rate is not None else state.rate
                state.period = period if period is not None else state.period
            state.reset_window(now)

        await self.update(user, key, change, create=True)

    async def unpin(self, user: str, key: str, parallelism: bool, rate: bool) -> None:
        """Let the next message's config set parallelism and/or rate again."""

        def change(state: KeyState, now: int) -> None:
            if parallelism:
                state.pinned_parallelism = False
            if rate:
                state.pinned_rate = False

        await self.update(user, key, change, create=False)

    async def reset_rate(self, user: str, key: str) -> None:
        """Start a new rate window now."""

        def change(state: KeyState, now: int) -> None:
            state.reset_window(now)

        await self.update(user, key, change, create=False)

    async def update(
        self, user: str, key: str, change: Callable[[KeyState, int], None], create: bool
    ) -> bool:
        """Apply ``change(state, now)`` to a key and release what it allows; False if unknown."""
        async with self._lock:
            state = await self.load(user, key)
            if state is None:
                if not create:
                    return False
                state = KeyState()
            change(state, self.clock.now_ms())
            await self._save(user, key, state)
            await self._pump(user, key, state)
            return True


def _apply_config(state: KeyState, msg: Message) -> bool:
    """Take the message's config where the key is not pinned; True when something changed."""
    before = dataclasses.astuple(state)
    flow = msg.options.flow
    if not state.pinned_parallelism:
        state.parallelism = flow["parallelism"] if flow else None
    if not state.pinned_rate:
        state.rate = flow["rate"] if flow else None
        state.period = (flow["period"] if flow else None) or 1
    return dataclasses.astuple(state) != before
