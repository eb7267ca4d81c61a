"""The one source of time for the engine: real, or virtual and driven by a test."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "RealClock", "VirtualClock"]


class Clock:
    """Time in Unix milliseconds, plus a way to wait on it that a virtual clock can cut short."""

    virtual = False

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        raise NotImplementedError

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from any thread) whenever time jumps."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    async def wait(self, until_ms: int | None, wake: asyncio.Event) -> None:
        """Return at ``until_ms`` on this clock, or earlier when ``wake`` is set."""
        raise NotImplementedError


class RealClock(Clock):
    """Wall-clock time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def wait(self, until_ms: int | None, wake: asyncio.Event) -> None:
        timeout = None if until_ms is None else max(0.0, (until_ms - self.now_ms()) / 1_000)
        try:
            await asyncio.wait_for(wake.wait(), timeout)
        except TimeoutError:
            pass


class VirtualClock(Clock):
    """Time that only moves when told to, so delays and backoff cost no wall time.

    It never patches the process clock: only the emulator reads it.
    """

    virtual = True

    def __init__(self, start_ms: int | None = None) -> None:
        super().__init__()
        self._now = time.time_ns() // 1_000_000 if start_ms is None else start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, seconds: float) -> int:
        """Move time forward by ``seconds``; returns the new time in ms."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        return self.set(self._now + round(seconds * 1_000))

    def set(self, now_ms: int) -> int:
        """Jump to ``now_ms`` (never backwards)."""
        with self._lock:
            self._now = max(self._now, now_ms)
        self._notify()
        return self._now

    def restart(self, now_ms: int) -> int:
        """Start over at ``now_ms``, backwards too: for a fresh test on an emulator that
        holds nothing due (the pytest plugin's, between tests). With nothing due there is no
        one to wake, and waking the engine's thread costs the caller ~0.4 ms."""
        with self._lock:
            self._now = now_ms
        return self._now

    async def wait(self, until_ms: int | None, wake: asyncio.Event) -> None:
        if until_ms is not None and until_ms <= self._now:
            return
        await wake.wait()
