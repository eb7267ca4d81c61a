"""Time under the test's control: advance, run until idle, and wait for a delivery.

Under a virtual clock nothing here sleeps: the emulator delivers what is due, then the clock
jumps to the next due item (auto-advance, as Temporal's test server does while a test waits).
Under a real clock the waits block on new delivery records, with a timeout.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from qstash_emulator.testing import VirtualClock, Waiting, duration_ms

from ._deliveries import Delivery
from ._matching import Criteria, no_match_message

if TYPE_CHECKING:
    from ._server import Recorder, Server

__all__ = ["Driver", "Duration", "to_ms"]

T = TypeVar("T")

# How long to move the clock: seconds, a timedelta, or a QStash duration string ("1h30m").
Duration = float | timedelta | str

_YEAR_MS = 366 * 86_400_000
# With a virtual clock and nothing left to deliver, a waiter gives up after this long without
# any new activity instead of sitting out its whole timeout.
IDLE_GRACE_S = 0.25


def to_ms(duration: Duration) -> int:
    """A ``Duration`` in ms: seconds (a number), a ``timedelta``, or ``"90s"``, ``"1h30m"``."""
    if isinstance(duration, timedelta):
        ms = round(duration / timedelta(milliseconds=1))
    elif isinstance(duration, str):
        parsed = duration_ms(duration)
        if parsed is None:
            raise ValueError(
                f"{duration!r} is not a duration: give seconds (a number), a timedelta, or a "
                "string such as '90s', '5m', '1h30m' or '7d'"
            )
        ms = parsed
    elif isinstance(duration, int | float) and not isinstance(duration, bool):
        ms = round(duration * 1_000)
    else:
        raise TypeError(f"a duration is seconds, a timedelta or a string, not {duration!r}")
    if ms < 0:
        raise ValueError("a clock only moves forward")
    return ms


class Driver:
    """The clock and the waits of one test."""

    def __init__(self, server: Server, user_id: str, recorder: Recorder, auto: bool) -> None:
        self.server = server
        self.user_id = user_id
        self.recorder = recorder
        self.auto_advance = auto
        self.emulator = server.emulator
        self.inspector = server.emulator.inspector

    def call(self, coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        __tracebackhide__ = True
        try:
            return self.server.emulator.call(coro, timeout)
        except (TimeoutError, concurrent.futures.TimeoutError):
            raise AssertionError(
                f"timed out after {timeout:g}s {what}\n" + self.pending_text()
            ) from None

    def now(self) -> int:
        return self.server.clock.now_ms()

    def _jump(self, now_ms: int) -> None:
        clock = self.server.clock
        assert isinstance(clock, VirtualClock)
        clock.set(now_ms)

    def waiting(self, timeout: float = 30) -> list[Waiting]:
        return self.server.emulator.call(self.inspector.waiting(self.user_id), timeout)

    def pending_text(self, timeout: float = 2) -> str:
        """What is pending, for a message about a wait that gave up."""
        return self.server.emulator.pending(timeout, self.user_id)

    # Moving time ------------------------------------------------------------------------------

    def wait_idle(self, timeout: float) -> None:
        __tracebackhide__ = True
        self.call(self.emulator.idle(), timeout, "waiting for due deliveries to finish")

    def advance(self, duration: Duration, timeout: float) -> int:
        __tracebackhide__ = True
        if not self.server.virtual:
            raise RuntimeError("advance() needs the virtual clock; this test uses real time")
        ms = to_ms(duration)
        target = self.now() + ms
        self.call(self._advance(target), timeout, f"advancing the clock by {ms / 1_000:g}s")
        return self.now()

    async def _advance(self, target: int) -> None:
        while True:
            await self.emulator.idle()
            nxt = await self.emulator.next_due(recurring=True)
            if nxt is None or nxt > target:
                break
            self._jump(nxt)
        self._jump(target)
        await self.emulator.idle()

    def run_until_idle(self, timeout: float, max_seconds: float | None) -> None:
        __tracebackhide__ = True
        if self.server.virtual:
            horizon = _YEAR_MS if max_seconds is None else round(max_seconds * 1_000)
            self.call(
                self._drain(self.now() + horizon, max_seconds is not None),
                timeout,
                "running until no message is due",
            )
            return
        deadline = time.monotonic() + timeout
        while self.waiting():
            seen = len(self.recorder.deliveries)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out after {timeout:g}s running until no message is pending\n"
                    + self.pending_text()
                )
            self.recorder.wait_for_more(seen, min(left, 0.05))

    async def _drain(self, limit: int, recurring: bool) -> None:
        while True:
            await self.emulator.idle()
            nxt = await self.emulator.next_due(recurring)
            if nxt is None or nxt > limit:
                return
            self._jump(nxt)

    # Waiting for deliveries -------------------------------------------------------------------

    def wait_for(self, criteria: Criteria, count: int, timeout: float) -> list[Delivery]:
        """The first ``count`` matching deliveries, moving a virtual clock as needed."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        idle_since: float | None = None
        start = self.now()
        while True:
            matched = [d for d in self.recorder.deliveries if criteria.matches(d)]
            if len(matched) >= count:
                return matched[:count]
            seen = len(self.recorder.deliveries)
            if self.server.virtual:
                self.wait_idle(max(0.1, deadline - time.monotonic()))
                if len(self.recorder.deliveries) > seen:
                    idle_since = None
                    continue
                nxt = self.call(self.emulator.next_due(), timeout, "finding what is due next")
                if self.auto_advance and nxt is not None and nxt <= start + _YEAR_MS:
                    self._jump(nxt)
                    idle_since = None
                    continue
                idle_since = idle_since or time.monotonic()
            left = deadline - time.monotonic()
            stalled = idle_since is not None and time.monotonic() - idle_since > IDLE_GRACE_S
            if left <= 0 or stalled:
                raise AssertionError(self._timeout_text(criteria, count, timeout, stalled))
            self.recorder.wait_for_more(seen, min(left, 0.05))

    def _timeout_text(self, criteria: Criteria, count: int, timeout: float, stalled: bool) -> str:
        if stalled:
            why = "the emulator is idle and nothing is due"
            if not self.auto_advance:
                why += " now (auto-advance is off: call qstash.advance())"
            headline = f"gave up waiting for {count} delivery(ies): {why}; wanted"
        else:
            headline = f"timed out after {timeout:g}s waiting for {count} delivery(ies) matching"
        text = no_match_message(headline, criteria, self.recorder.deliveries)
        return text + "\n" + self.pending_text()
