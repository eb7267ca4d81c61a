"""Attempts in flight per destination and per user (docs/behaviour.md#delivery).

An endpoint that accepts a request and never answers (one paused in a debugger) holds each
attempt until its timeout, two hours on the payg plan. Without a limit of its own, enough of
them fill the engine's process-wide limit and nothing else is delivered, for any user. So each
destination (scheme, host and port) and each user has a number of attempts it may have in
flight; a message claimed while one of them is full waits here, in a line per limit (still
claimed in the store: a restart makes it due again, it was never sent), and starts, in the
order claimed, as soon as both limits have room.
"""

from __future__ import annotations

import functools
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Claim", "Lanes", "destination_of"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=4_096)
def destination_of(url: str) -> str:
    """What a destination limit counts: scheme, host and port (``http://h:80``)."""
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # not a port: the URL as written names it
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


@dataclass(frozen=True)
class Claim:
    """A claimed message as the lanes count it (in flight, or in line for room): its id,
    destination and user."""

    message_id: str
    destination: str
    user: str


class Lanes:
    """Counts of attempts in flight, and the lines of messages waiting for room."""

    def __init__(self, per_destination: int, per_user: int) -> None:
        self.per_destination = per_destination
        self.per_user = per_user
        self._to: Counter[str] = Counter()
        self._for: Counter[str] = Counter()
        # One line per full limit ("d" destination or "u" user), oldest first; an id no
        # longer in ``_waiting`` (cancelled meanwhile) is skipped.
        self._lines: dict[tuple[str, str], deque[Claim]] = {}
        self._waiting: dict[str, Claim] = {}
        # Waiting ids that may not start for now (a bulk cancel is going through them).
        self._paused: set[str] = set()

    def __len__(self) -> int:
        """How many messages wait."""
        return len(self._waiting)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._waiting

    def ids(self) -> set[str]:
        return set(self._waiting)

    def in_flight(self, destination: str, user: str) -> tuple[int, int]:
        """Attempts in flight to ``destination`` and of ``user``."""
        return self._to[destination], self._for[user]

    def _full(self, destination: str, user: str) -> tuple[str, str] | None:
        """The line to wait in, or None when both limits have room."""
        if self._to[destination] >= self.per_destination:
            return ("d", destination)
        if self._for[user] >= self.per_user:
            return ("u", user)
        return None

    def admit(self, message_id: str, destination: str, user: str) -> bool:
        """Take a slot of both limits and True, or put the message in line and False."""
        line = self._full(destination, user)
        if line is None:
            self.take(destination, user)
            return True
        waiting = Claim(message_id, destination, user)
        self._waiting[message_id] = waiting
        self._lines.setdefault(line, deque()).append(waiting)
        return False

    def take(self, destination: str, user: str) -> None:
        """Take a slot of both limits, room or not."""
        self._to[destination] += 1
        self._for[user] += 1

    def release(self, destination: str, user: str) -> None:
        """An attempt ended: its slots are free."""
        for counter, key in ((self._to, destination), (self._for, user)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

    def drop(self, message_ids: Iterable[str]) -> None:
        """These messages no longer wait (cancelled, or the engine let go of them)."""
        for message_id in message_ids:
            self._waiting.pop(message_id, None)
            self._paused.discard(message_id)

    def pause(self, message_ids: Iterable[str]) -> set[str]:
        """Keep those of these messages that wait from starting (each stays first in its
        line, holding it) until ``resume``; the ids paused."""
        paused = {i for i in message_ids if i in self._waiting} - self._paused
        self._paused |= paused
        return paused

    def resume(self, message_ids: Iterable[str]) -> None:
        self._paused.difference_update(message_ids)

    def clear(self) -> list[str]:
        """Forget every line; the ids that waited."""
        ids = list(self._waiting)
        self._waiting.clear()
        self._lines.clear()
        self._paused.clear()
        return ids

    def ready(self, room: int) -> list[Claim]:
        """Up to ``room`` waiting messages that now fit both limits, oldest of each line
        first, their slots taken. A line's first message held back by its other limit moves
        to that limit's line."""
        started: list[Claim] = []
        for line, queue in list(self._lines.items()):
            while queue and len(started) < room:
                head = queue[0]
                if self._waiting.get(head.message_id) is not head:
                    queue.popleft()
                    continue
                if head.message_id in self._paused:
                    break
                other = self._full(head.destination, head.user)
                if other == line:
                    break
                queue.popleft()
                if other is None:
                    del self._waiting[head.message_id]
                    self.take(head.destination, head.user)
                    started.append(head)
                else:
                    self._lines.setdefault(other, deque()).append(head)
            if not queue:
                del self._lines[line]
        return started
