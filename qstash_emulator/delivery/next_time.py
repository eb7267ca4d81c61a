"""A timer's next due time, read from its store index and kept until a write may change it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

__all__ = ["NextTime"]


class NextTime:
    """The engine asks every timer for its next time on every turn: the answer is read once
    and kept until ``stale()`` says a write may have moved it."""

    def __init__(self, read: Callable[[], Awaitable[int | None]]) -> None:
        self._read = read
        self._value: int | None = None
        self._read_at = -1
        self._version = 0

    def stale(self) -> None:
        """A write may have moved the next time; call it after the write, so that a read
        which overlapped the write is not kept."""
        self._version += 1

    async def get(self) -> int | None:
        if self._read_at == self._version:
            return self._value
        version = self._version
        self._value = await self._read()
        self._read_at = version
        return self._value
