"""The live activity feed ``qstash-emulator dev`` prints: one line per event, as it happens.

Published messages, deliveries, retries, dead letters, callbacks, schedule runs and queue
pauses, heard from the publisher, the engine and the queues. Lines are written by a thread of
their own, so a terminal or pipe that reads slowly never holds up the server: past a backlog
of ``_BACKLOG`` lines, lines are dropped and counted. The lines of ``_HAND_OVER_S`` reach that
thread together, with one wake-up: under load that is hundreds of lines, and a hand-over and
a thread switch for each (or for each turn of the event loop) cost more than writing them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, TextIO

from ..delivery.records import Attempt
from ..model.message import Message
from ..services.inspection import _span
from .masking import mask_secrets

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["Feed"]

_BACKLOG = 10_000
_HAND_OVER_S = 0.02  # no one reading a terminal sees a line come 20 ms late
_BODY_CHARS = 200

# ANSI colours by event, and for the time stamp.
_COLORS = {
    "published": "36",  # cyan
    "schedule": "35",  # magenta
    "delivered": "32",  # green
    "retry": "33",  # yellow
    "failed": "31",  # red
    "cancelled": "31",
    "callback": "34",  # blue
    "queue": "35",
}
_DIM = "2"
_WIDTH = 10


class Feed:
    """Prints one line per event to ``out``; coloured when ``color``, bodies when ``bodies``."""

    def __init__(
        self, out: TextIO, *, color: bool, bodies: bool = False, default_user: str = ""
    ) -> None:
        self.out = out
        self.color = color
        self.bodies = bodies
        self.default_user = default_user
        self._pending: list[str] = []  # lines made on the event loop, handed over together
        self._ready = threading.Condition()
        self._lines: list[str] = []  # handed over, not yet written (guarded by _ready)
        self._dropped = 0  # guarded by _ready
        self._closed = False
        self._second = -1  # the time stamp's whole second, and its text, kept for the next line
        self._clock = ""
        self._thread = threading.Thread(target=self._write, name="qstash-emulator-feed")
        self._thread.daemon = True
        self._thread.start()

    def attach(self, runtime: Runtime) -> None:
        """Listen to ``runtime``'s publisher, engine and queues."""
        runtime.publisher.accepting.append(self._published)
        runtime.engine.listeners.append(self.attempt)
        runtime.queues.pause_listeners.append(self.queue_paused)

    def close(self) -> None:
        """Write what is left, then stop the writer thread."""
        self._hand_over()
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(5)

    # Events ---------------------------------------------------------------------------------

    async def _published(self, messages: list[Message]) -> None:
        for msg in messages:
            self.published(msg)

    def published(self, msg: Message) -> None:
        where = f"{msg.options.method} {msg.url}"
        if msg.topic_name:
            where += f" (URL group {msg.topic_name})"
        if msg.queue_name:
            where += f" (queue {msg.queue_name})"
        if msg.not_before > msg.created_at:
            where += f", due in {_span(msg.not_before - msg.created_at)}"
        if msg.schedule_id:
            text = f"{msg.schedule_id} fired: {msg.id} -> {where}"
            self._emit("schedule", msg.user, text, msg.body)
        else:
            self._emit("published", msg.user, f"{msg.id} -> {where}", msg.body)

    def attempt(self, attempt: Attempt) -> None:
        """An engine listener: one line per delivery attempt."""
        took = f"{(attempt.wall_finished - attempt.wall_started) * 1_000:.0f} ms"
        result = f"status {attempt.status}" if attempt.response else (attempt.error or "")
        number = f"attempt {attempt.retried + 1} of {attempt.max_retries + 1}"
        what = attempt.message_id
        event: str = attempt.outcome
        if attempt.kind != "message":
            # "callback msg_b of msg_a" (or "failure callback ..."); delivered ones get the
            # label "callback" and leave the word out.
            event = "callback"
            name = attempt.kind.replace("_", " ")
            what = f"{attempt.message_id} of {attempt.source_message_id}"
            if attempt.outcome != "delivered":
                what = f"{name} {what}"
            elif attempt.kind == "failure_callback":
                what = f"{attempt.message_id} (failure) of {attempt.source_message_id}"
        if attempt.outcome == "delivered":
            text = f"{what} {result} in {took} <- {attempt.url}"
        elif attempt.outcome == "retry":
            later = _span(attempt.next_delay_ms or 0)
            text = f"{what} {result} ({number}), retry in {later} <- {attempt.url}"
            event = "retry"
        elif attempt.outcome == "cancelled":
            text = f"{what} {attempt.reason} ({number}) <- {attempt.url}"
            event = "cancelled"
        else:
            end = "dead-lettered" if attempt.kind == "message" else "given up"
            text = f"{what} {attempt.reason}, {end} <- {attempt.url}"
            event = "failed"
        body = attempt.response.body if attempt.response is not None else b""
        self._emit(event, attempt.user, text, body)

    def queue_paused(self, user: str, name: str, paused: bool) -> None:
        self._emit("queue", user, f"{name} {'paused' if paused else 'resumed'}", b"")

    # Output ---------------------------------------------------------------------------------

    def _emit(self, event: str, user: str, text: str, body: bytes) -> None:
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            self._clock = time.strftime("%H:%M:%S", time.localtime(now))
        stamp = f"{self._clock}.{int(now * 1e3) % 1000:03d}"
        text = mask_secrets(text)  # URLs with ?qstash_token=... or user:password@
        if user != self.default_user:
            text = f"[{user}] {text}"
        label = event.ljust(_WIDTH)
        if self.color:
            stamp, label = _paint(stamp, _DIM), _paint(label, _COLORS[event])
        line = f"{stamp} {label}{text}"
        if self.bodies and body:
            shown = body[:_BODY_CHARS].decode("utf-8", "replace")
            more = "..." if len(body) > _BODY_CHARS else ""
            line += f"\n{' ' * 13}{' ' * _WIDTH}body: {shown!r}{more}"
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop's thread: nothing to wait for
            self._give([line])
            return
        self._pending.append(line)
        if len(self._pending) == 1:
            loop.call_later(_HAND_OVER_S, self._hand_over)

    def _hand_over(self) -> None:
        """Give the lines made on the event loop since the last hand-over to the writer."""
        lines, self._pending = self._pending, []
        if lines:
            self._give(lines)

    def _give(self, lines: list[str]) -> None:
        with self._ready:
            room = _BACKLOG - len(self._lines)
            if len(lines) > room:
                self._dropped += len(lines) - max(room, 0)
                lines = lines[: max(room, 0)]
            self._lines += lines
            self._ready.notify()

    def _write(self) -> None:
        while True:
            with self._ready:
                while not self._lines and not self._dropped and not self._closed:
                    self._ready.wait()
                lines, self._lines = self._lines, []
                dropped, self._dropped = self._dropped, 0
                closed = self._closed
            if dropped:
                lines.append(f"... {dropped} lines dropped: the output is read too slowly")
            if lines:
                try:
                    self.out.write("\n".join(lines) + "\n")
                    self.out.flush()
                except (OSError, ValueError):  # the terminal went away: stop printing
                    return
            if closed:
                return


def _paint(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m"
