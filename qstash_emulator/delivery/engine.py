"""The delivery engine: takes due messages, calls their destinations, retries, dead-letters.

One engine runs per emulator, in the server's event loop. Queues and flow control plug in
as gates that may hold a message back before an attempt and hear when it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .. import _json
from ..model.headers import H
from ..model.message import FINAL_STATES, Kind, LogState, Message, State, new_id
from ..model.options import CallbackConfig, PublishOptions
from ..model.sendable import on_the_wire
from ..model.views import callback_payload, log_row
from ..server.config import Settings
from ..store.core import Store, StoreUnavailable
from .clock import Clock
from .lanes import Claim, Lanes, destination_of
from .records import Attempt, AttemptRequest, AttemptResponse
from .retry import Decision, decide
from .signing import sign
from .transport import DeliveryError, Response, Transport

__all__ = [
    "Engine",
    "Gate",
    "RunDelivery",
    "RunHooks",
    "Timer",
    "callback_message",
    "make_row",
]

log = logging.getLogger("qstash_emulator")
T = TypeVar("T")

_BATCH = 256
_SWEEP_S = 1.0
_MAX_IN_FLIGHT = 1_024
# Claimed messages waiting for room at their destination or user (ids only, in memory).
_MAX_WAITING = 100_000


class Gate(Protocol):
    """A rule that may hold a message back (a queue, a flow-control key)."""

    async def admit(self, msg: Message) -> bool:
        """True to attempt now; False when the gate has parked the message itself."""
        ...

    async def attempt_done(self, msg: Message) -> None: ...

    async def finished(self, msg: Message) -> None: ...


class Timer(Protocol):
    """Work that comes due on the clock without a message (schedules, rate windows)."""

    async def next_due(self) -> int | None: ...

    async def fire(self, now_ms: int) -> None:
        """Do whatever is due at ``now_ms`` (e.g. publish a schedule's message)."""
        ...


@dataclass(frozen=True)
class RunDelivery:
    """How a workflow run's message goes out: its body and the run's headers."""

    body: bytes
    underlay: dict[str, str] = field(default_factory=dict)  # the message's own headers win
    overlay: dict[str, str] = field(default_factory=dict)  # win over the message's


class RunHooks(Protocol):
    """What Upstash Workflow adds to the life of a run's messages (``msg.run_id`` set)."""

    async def outgoing(self, msg: Message) -> RunDelivery:
        """The body and headers of the next attempt."""
        ...

    def verdict(self, msg: Message, response: Response | None, decision: Decision) -> Decision:
        """The decision after the run's own checks of the answer."""
        ...

    async def attempted(
        self, msg: Message, decision: Decision, result: dict[str, Any], now: int
    ) -> None: ...

    async def failed(self, msg: Message, result: dict[str, Any], now: int) -> list[Message]:
        """The message failed for good: what its run makes of that (the failure call)."""
        ...

    async def adopt(self, made: list[tuple[Message, CallbackConfig]]) -> list[Message]:
        """Callbacks that belong to runs, recorded in them; those to store and deliver."""
        ...


class Engine:
    """Runs deliveries on the emulator's clock."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        transport: Transport,
        keys: Callable[[str], Any],
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.transport = transport
        self._keys = keys
        # What plugs in (``attach``): the services that hold messages back or fire on the
        # clock are built on the publisher, which is built on this engine.
        self.gates: list[Gate] = []
        self.timers: list[Timer] = []
        self.listeners: list[Callable[[Attempt], None]] = []
        self.runs: RunHooks | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle = asyncio.Event()
        self._attempting: set[str] = set()
        self._lanes = Lanes(settings.in_flight_per_destination, settings.in_flight_per_user)
        # Claimed messages taken out of line by a cancel, until their final state is stored.
        self._closing: set[str] = set()
        # The transport call of each attempt sending now, for a cancel to end it.
        self._sends: dict[str, asyncio.Future[Response]] = {}
        # One set per sweep under way: the ids let go of meanwhile (their claims may have
        # looked abandoned to its read, though an attempt held them until then).
        self._let_go: list[set[str]] = []
        self._claiming = False
        self.cancel_requested: set[str] = set()
        self._store_down = False
        self._sweeper: asyncio.Task[None] | None = None
        # Attempts under way that stop() cancelled (the dev server reports them on exit).
        self.dropped = 0
        # While the dispatcher sleeps: until when (None: until woken). A due time written
        # earlier than that, or while a turn runs (it may have read the times already), wakes it.
        self._sleeping = False
        self._sleeps_until: int | None = None
        # Messages taken as they are stored (``take``), until their write lands; the epoch
        # changes when dispatch stops or attempts are dropped: a hand-over from before is void.
        self._handing = 0
        self._epoch = 0
        # Readies the transport in the background: the first delivery is not the slow one.
        self._warming: asyncio.Task[None] | None = None

    def attach(
        self,
        *,
        gates: Iterable[Gate],
        timers: Iterable[Timer],
        listeners: Iterable[Callable[[Attempt], None]] = (),
        runs: RunHooks | None = None,
    ) -> None:
        """Plug in the gates, in the order a message meets them; the timers; who hears each
        attempt; and Upstash Workflow's hooks for run messages (``workflows.RunMessages``).

        The order of the gates: a message's place in its queue first; flow control last,
        since a message it admits is attempted at once, and a gate after it could hold back
        a message that already occupies a flow-control slot.
        """
        self.gates = list(gates)
        self.timers = list(timers)
        self.listeners.extend(listeners)
        self.runs = runs

    # Life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.store.start()
        recovered = await self.store.recover(self.clock.now_ms())
        if recovered:
            log.info("recovered %d in-flight messages; they will be delivered again", recovered)
        self.clock.subscribe(self.notify)
        self.store.due_listeners.append(self._due_written)
        self._dispatch()
        if self._warming is None:
            self._warming = asyncio.create_task(_quietly(self._warm()), name="qstash-emulator-warm")

    def _dispatch(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="qstash-emulator-engine")
        self._sweeper = asyncio.create_task(self._sweep(), name="qstash-emulator-orphans")
        self.store.hand_over = self

    async def _warm(self) -> None:
        """Ready, in the background, what the first delivery would otherwise wait for: the
        network transport (its import is kept out of start-up)."""
        warm = getattr(self.transport, "warm", None)
        if warm is not None:
            await warm()

    async def _stop_dispatch(self) -> None:
        if self.store.hand_over is self:
            self.store.hand_over = None
        self._new_epoch()
        await _cancel([t for t in (self._runner, self._sweeper) if t is not None])

    async def drain(self) -> None:
        """Start no more attempts (nor timers); return once those under way have ended and
        their outcomes are recorded. ``stop()`` then drops any still running."""
        await self._stop_dispatch()
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def stop(self) -> None:
        self.clock.unsubscribe(self.notify)
        if self._warming is not None:
            await _cancel([self._warming])
            self._warming = None
        if self._due_written in self.store.due_listeners:
            self.store.due_listeners.remove(self._due_written)
        await self._stop_dispatch()
        self.dropped = len(self._tasks)
        await _cancel(list(self._tasks))
        await self.transport.close()

    @contextlib.asynccontextmanager
    async def halted(self) -> AsyncIterator[None]:
        """Nothing of the engine runs inside: no dispatch, no timer, no attempt (those in
        flight are dropped unrecorded). A reset flushes the store inside, so that messages a
        claim under way had taken are not sent, nor written back, after it."""
        dispatching = self._runner is not None and not self._runner.done()
        await self._stop_dispatch()
        await self.abort()
        try:
            yield
        finally:
            if dispatching:
                self._dispatch()

    async def abort(self) -> None:
        """Drop every attempt in flight (their outcomes are not recorded), and forget the
        claimed messages waiting for room (the sweep makes them due again)."""
        self._new_epoch()
        self._unmark(self._lanes.clear())
        await _cancel(list(self._tasks))
        self.cancel_requested.clear()

    def notify(self) -> None:
        """Wake the dispatcher: something became due or time moved. Safe from any thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def _due_written(self, index: str, when_ms: int) -> None:
        """A due time was stored (``Store.due_listeners``): wake the dispatcher if it would
        otherwise sleep past it."""
        if not self._sleeping or self._sleeps_until is None or when_ms < self._sleeps_until:
            self.notify()

    @property
    def wakes_at(self) -> int | None:
        """When the dispatcher next looks for due work: now while it runs, None while it
        sleeps until woken."""
        return self._sleeps_until if self._sleeping else self.clock.now_ms()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def is_in_flight(self, message_id: str) -> bool:
        return message_id in self._attempting

    async def next_due(self) -> int | None:
        """The earliest time anything (a message or a timer) is due."""
        times = [await self.store.next_due()]
        for timer in self.timers:
            times.append(await timer.next_due())
        known = [t for t in times if t is not None]
        return min(known) if known else None

    async def wait_idle(self) -> None:
        """Return once nothing is due now and no attempt is running."""
        while True:
            if not self._busy():
                nxt = await self.next_due()
                if nxt is None or nxt > self.clock.now_ms():
                    # One more loop turn so the dispatcher can claim what just became due.
                    await asyncio.sleep(0)
                    if not self._busy():
                        nxt = await self.next_due()
                        if nxt is None or nxt > self.clock.now_ms():
                            return
            self._idle.clear()
            self.notify()
            try:
                await asyncio.wait_for(self._idle.wait(), 0.05)
            except TimeoutError:
                pass

    def _busy(self) -> bool:
        """An attempt runs or waits for room, or a claim or a hand-over is under way."""
        return bool(self._tasks or self._claiming or self._lanes or self._handing)

    # Dispatch -------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                now = self.clock.now_ms()
                # Each timer is asked once per turn (again only after it fired); its answer also
                # bounds the wait below. Asking twice cost a store round trip per timer.
                timer_dues: list[int | None] = []
                for timer in self.timers:
                    due = await timer.next_due()
                    if due is not None and due <= now:
                        await timer.fire(now)
                        due = await timer.next_due()
                    timer_dues.append(due)
                for waiting in self._lanes.ready(_MAX_IN_FLIGHT - len(self._tasks)):
                    self._attempting.add(waiting.message_id)
                    self._start(self._attempt_waiting(waiting), waiting)
                free = _MAX_IN_FLIGHT - len(self._tasks)
                # While a claim is under way its messages are neither due nor tasks yet;
                # wait_idle must not mistake that moment for idleness.
                self._claiming = True
                try:
                    claimed: list[Message] = []
                    after: int | None = None
                    if free > 0 and len(self._lanes) < _MAX_WAITING:
                        claimed, after = await self._claim(min(_BATCH, free))
                    for msg in claimed:
                        self._admit(msg)
                finally:
                    self._claiming = False
                if claimed and len(claimed) == _BATCH:
                    await asyncio.sleep(0)
                    continue
                nxt = None
                if free > 0:
                    known = [t for t in (after, *timer_dues) if t is not None]
                    nxt = min(known) if known else None
                if not self._tasks:
                    self._idle.set()
                self._sleeping, self._sleeps_until = True, nxt
                try:
                    await self.clock.wait(nxt, self._wake)
                finally:
                    self._sleeping = False
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:  # a Redis restart: retry, never die
                self._store_failed(exc)
                await asyncio.sleep(0.5)
            except Exception:
                log.exception("engine loop error; retrying in 0.5s")
                await asyncio.sleep(0.5)

    # Hand-over (``store.core.HandOver``) --------------------------------------------------

    def _new_epoch(self) -> None:
        """Void the hand-overs under way (their adds may never resume: a loop torn down)."""
        self._epoch += 1
        self._handing = 0

    def take(self, messages: list[Message]) -> tuple[list[Message], int]:
        """Of messages due at once, about to be stored, those this engine claims in their
        own write, as many as a claim would take now; marked as attempted from here on, so
        the sweep never mistakes their claim for an abandoned one."""
        room = min(
            _MAX_IN_FLIGHT - len(self._tasks) - self._handing,
            _MAX_WAITING - len(self._lanes),
        )
        taken = messages[: max(0, room)]
        self._handing += len(taken)
        self._attempting.update(m.id for m in taken)
        return taken, self._epoch

    def handed(self, messages: list[Message], ticket: int) -> None:
        """Their write landed: attempt them, unless dispatch stopped or attempts were dropped
        meanwhile (a reset); then they are claims no attempt holds, due again by the sweep or
        on start-up."""
        if ticket != self._epoch:
            self._unmark(m.id for m in messages)
            return
        self._handing -= len(messages)
        for msg in messages:
            self._admit(msg)

    def release(self, messages: list[Message], ticket: int) -> None:
        """Their write failed: nothing was stored."""
        if ticket == self._epoch:
            self._handing -= len(messages)
        self._unmark(m.id for m in messages)
        self.cancel_requested.difference_update(m.id for m in messages)

    async def _claim(self, limit: int) -> tuple[list[Message], int | None]:
        """Claim what is due; the chosen ids count as attempted from the moment they are
        chosen, so a cancel racing the claim is honoured as a cancel in flight."""
        chosen: list[str] = []

        def mark(ids: list[str]) -> None:
            chosen.extend(ids)
            self._attempting.update(ids)

        try:
            claimed, after = await self.store.claim_due(self.clock.now_ms(), limit, mark)
        except BaseException:
            self._unmark(chosen)
            raise
        gone = set(chosen) - {m.id for m in claimed}
        self._unmark(gone)
        self.cancel_requested.difference_update(gone)
        return claimed, after

    def _admit(self, msg: Message) -> None:
        """Start the attempt of a claimed message, or let it wait for room at its
        destination or user."""
        slots = Claim(msg.id, destination_of(msg.url), msg.user)
        if msg.id in self.cancel_requested:  # a cancel raced the claim: it ends at once
            self._lanes.take(slots.destination, slots.user)
        elif not self._lanes.admit(msg.id, slots.destination, slots.user):
            self._attempting.discard(msg.id)  # held while it waits in line
            return
        self._start(self._attempt(msg), slots)

    def _start(self, attempt: Coroutine[Any, Any, None], slots: Claim) -> None:
        """Run ``attempt`` as a task holding ``slots`` of the lanes until it ends."""
        task = asyncio.create_task(attempt)
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._ended, slots))

    def _ended(self, slots: Claim, task: asyncio.Task[None]) -> None:
        self._lanes.release(slots.destination, slots.user)
        self._done(task)

    async def _attempt_waiting(self, waiting: Claim) -> None:
        """The attempt of a message that waited for room (it is read again: it may have
        changed or ended meanwhile)."""
        try:
            msg = await self.store.get(waiting.message_id)
        except BaseException:
            self._unmark([waiting.message_id])
            raise
        if msg is None or msg.final_at is not None:
            self._unmark([waiting.message_id])
            self.cancel_requested.discard(waiting.message_id)
            return
        await self._attempt(msg)

    def _unmark(self, ids: Iterable[str]) -> None:
        """No attempt of this engine holds ``ids`` any more."""
        ids = list(ids)
        self._attempting.difference_update(ids)
        for let_go in self._let_go:
            let_go.update(ids)

    async def _sweep(self) -> None:
        """Every second, return to due the claims no running attempt holds: left by a claim
        or an attempt whose store write failed (a Redis outage), they would otherwise stay
        in flight until a restart."""
        while True:
            await asyncio.sleep(_SWEEP_S)
            try:
                await self.return_orphans()
            except StoreUnavailable as exc:
                self._store_failed(exc)
                continue
            self._store_answered()

    def _store_failed(self, exc: BaseException) -> None:
        """Log an outage once, however many calls meet it."""
        if not self._store_down:
            self._store_down = True
            log.warning("store unavailable (%s): retrying; outcomes wait until it answers", exc)

    def _store_answered(self) -> None:
        """Log the end of an outage once. Only the sweep calls this: it reads the store every
        second, while other calls that succeed may not have touched the store at all."""
        if self._store_down:
            self._store_down = False
            log.warning("store answers again")

    async def return_orphans(self) -> int:
        """Make due again each claim no attempt of this engine holds; how many there were."""
        # An attempt is marked before its claim is written and unmarked after its outcome is
        # (a claimed message waiting for room is held by its line).
        # So a claim the read finds was marked before the read, and is held if it is still
        # marked after it, or was let go of meanwhile (its outcome may have landed after the
        # read): the marks are looked at once the read is done, never before. A claim's own
        # time is taken before it is marked, so comparing times alone cannot tell.
        now = self.clock.now_ms()
        let_go: set[str] = set()
        self._let_go.append(let_go)
        try:
            claimed = await self.store.claimed_before(now)
            held = self._attempting | self._lanes.ids() | self._closing | let_go
        finally:
            self._let_go.remove(let_go)
        orphans = [i for i in claimed if i not in held]
        if orphans:
            await self.store.unclaim(orphans, now)
            log.warning("%d claimed messages had no running attempt: due again", len(orphans))
            self.notify()
        return len(orphans)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if isinstance(exc, StoreUnavailable):
            # Its message stays claimed; the sweep makes it due again once the store answers.
            log.debug("attempt stopped: store unavailable (%s)", exc)
        elif exc is not None:
            log.error("delivery task failed", exc_info=exc)
        if not self._tasks:
            self._idle.set()
        self._wake.set()

    async def _attempt(self, msg: Message) -> None:
        # Claimed means in flight: a cancel arriving while the gates decide must not finish the
        # message behind the engine's back; it is honoured below, before or after the send.
        self._attempting.add(msg.id)
        try:
            for gate in self.gates:
                if not await gate.admit(msg):
                    if msg.id in self.cancel_requested:
                        await self._cancel_held(msg)
                    return
            if msg.id in self.cancel_requested:
                await self._cancel_held(msg)
                return
            await self._send(msg)
        finally:
            self._unmark([msg.id])
            self.cancel_requested.discard(msg.id)

    async def cancel(self, msg: Message) -> bool:
        """Cancel a message that is not final. One in flight has its attempt ended (the
        request is dropped) unless it is already being settled.

        False when there is nothing left to cancel: the message is final, or its cancel was
        already asked for while it is in flight (one message is cancelled once).
        """
        if msg.state in FINAL_STATES or msg.id in self.cancel_requested:
            return False
        now = self.clock.now_ms()
        if self.is_in_flight(msg.id):
            self.cancel_requested.add(msg.id)
            await self.store.append_rows([make_row(msg, State.CANCEL_REQUESTED, now)])
            send = self._sends.get(msg.id)
            if send is not None:
                send.cancel()
            return True
        if msg.id in self._lanes:  # claimed, in line: it must not start, nor look abandoned
            self._lanes.drop([msg.id])
            self._closing.add(msg.id)
        try:
            await self.finish_canceled(msg, [make_row(msg, State.CANCEL_REQUESTED, now)], now)
        finally:
            if msg.id in self._closing:
                self._closing.discard(msg.id)
                self._unmark([msg.id])
        return True

    @contextlib.contextmanager
    def holding(self, message_ids: Iterable[str]) -> Iterator[None]:
        """Those of these messages that wait for room do not start inside: a bulk cancel
        ending attempts in flight would otherwise start them, only to end them too."""
        paused = self._lanes.pause(message_ids)
        try:
            yield
        finally:
            self._lanes.resume(paused)
            self.notify()

    async def _cancel_held(self, msg: Message) -> None:
        """Finish a message whose cancel came in while it was claimed but not yet sent."""
        await self.finish_canceled(msg, [], self.clock.now_ms(), durable=True)

    async def finish_canceled(
        self, msg: Message, rows: list[dict[str, Any]], now: int, durable: bool = False
    ) -> None:
        """Make ``msg`` CANCELED after ``rows``: the one way every cancel path ends."""
        msg.state, msg.final_at = State.CANCELED, now
        rows.append(make_row(msg, State.CANCELED, now))
        await self._finish(msg, rows, durable)

    async def _finish(self, msg: Message, rows: list[dict[str, Any]], durable: bool) -> None:
        """Store a final state (readable for the grace period) and tell the gates; with
        ``durable`` (an attempt's outcome) through a store outage."""
        grace_ms = int(self.settings.message_grace_s * 1_000)
        write = self._durably if durable else _now
        await write(lambda: self.store.finish(msg, rows, grace_ms))
        for gate in self.gates:
            await write(functools.partial(gate.finished, msg))

    async def _durably(self, write: Callable[[], Awaitable[T]]) -> T:
        """``write()``, tried again until the store answers: an attempt's outcome is stored
        once it can be, and its message stays claimed by the running task meanwhile."""
        delay = 0.05
        while True:
            try:
                result = await write()
            except StoreUnavailable as exc:
                self._store_failed(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            return result

    async def _send(self, msg: Message) -> None:
        current_key = (await self._keys(msg.user))[0]
        run = await self.runs.outgoing(msg) if msg.run_id and self.runs else None
        body = run.body if run is not None else msg.body
        headers = self._request_headers(msg, current_key, body, run)
        timeout_s = (msg.options.timeout_ms or self.settings.limits.max_timeout_s * 1_000) / 1_000
        started, wall_started = self.clock.now_ms(), time.time()
        # Logged as the attempt starts, while its request goes out (waiting for that write
        # first put a group commit before every delivery: two to three loop turns of
        # latency). The row's time is taken as it is queued behind those queued before it,
        # so the log stays in time order; the outcome's rows are queued after it.
        active = asyncio.ensure_future(
            self._durably(
                lambda: self.store.append_rows([make_row(msg, State.ACTIVE, self.clock.now_ms())])
            )
        )
        response: Response | None = None
        error: str | None = None
        ended = False
        try:
            try:
                response = await self._call(msg, headers, body, timeout_s)
            except _Ended:
                error, ended = "cancelled while in flight: the request was dropped", True
            except DeliveryError as exc:
                error = exc.reason
            except Exception as exc:  # any failure to send is a failed attempt, not a crash
                error = f"{type(exc).__name__}: {exc}"
            await active
        except BaseException:  # cancelled (a stop, a reset): the row is not written after it
            active.cancel()
            raise
        now = self.clock.now_ms()
        decision = decide(
            response, error, msg.retried, msg.max_retries, msg.options.retry_delay, now
        )
        if ended:  # neither delivered nor failed: cancelled
            decision = Decision("cancelled", error or "")
        elif run is not None and self.runs is not None:
            decision = self.runs.verdict(msg, response, decision)
        for gate in self.gates:
            await self._durably(functools.partial(gate.attempt_done, msg))
        if decision.outcome == "retry" and msg.id in self.cancel_requested:
            # answered (a failure) while a cancel waited for it: it is not tried again
            decision = Decision("cancelled", f"{decision.reason}; cancelled, not retried")
        self._emit(msg, headers, body, response, error, decision, started, wall_started)
        await self._settle(msg, response, error, decision, ended)

    async def _call(
        self, msg: Message, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Response:
        """The destination's answer; raises ``_Ended`` when a cancel ends the attempt."""
        send = asyncio.ensure_future(
            self.transport.send(msg.options.method, msg.url, headers, body, timeout_s)
        )
        self._sends[msg.id] = send
        if msg.id in self.cancel_requested:  # asked for while the attempt was starting
            send.cancel()
        try:
            return await send
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if send.cancelled() and task is not None and not task.cancelling():
                raise _Ended from None
            raise
        finally:
            self._sends.pop(msg.id, None)

    def _request_headers(
        self, msg: Message, key: str, body: bytes, run: RunDelivery | None = None
    ) -> dict[str, str]:
        # The filter also covers messages stored by an older version that kept framing headers.
        headers = {
            name: ", ".join(values)
            for name, values in msg.options.header.items()
            if on_the_wire(name)
        }
        if run is not None:
            headers = {**run.underlay, **headers, **run.overlay}
        headers[H.USER_AGENT] = "Upstash-QStash"
        # Wall time, not the emulator's clock: receivers check iat/exp against their own clock,
        # and a virtual clock that ran ahead would make PyJWT reject "iat in the future".
        headers[H.SIGNATURE] = sign(key, msg.url, body, int(time.time()))
        headers[H.MESSAGE_ID] = msg.id
        headers[H.RETRIED] = str(msg.retried)
        headers[H.REGION] = self.settings.region
        if msg.caller_ip:
            headers[H.CALLER_IP] = msg.caller_ip
        if msg.schedule_id:
            headers[H.OUT_SCHEDULE_ID] = msg.schedule_id
        if msg.topic_name:
            headers[H.TOPIC_NAME] = msg.topic_name
        return headers

    def _emit(
        self,
        msg: Message,
        headers: dict[str, str],
        body: bytes,
        response: Response | None,
        error: str | None,
        decision: Decision,
        started: int,
        wall_started: float,
    ) -> None:
        if not self.listeners:
            return
        attempt = Attempt(
            message_id=msg.id,
            user=msg.user,
            kind=msg.kind,
            retried=msg.retried,
            max_retries=msg.max_retries,
            request=AttemptRequest(msg.options.method, msg.url, headers, body),
            response=AttemptResponse(response.status, response.header_map(), response.body)
            if response is not None
            else None,
            error=error,
            outcome=decision.outcome,
            reason=decision.reason,
            next_delay_ms=decision.delay_ms,
            delay_source=decision.delay_source,
            started_at=started,
            finished_at=self.clock.now_ms(),
            wall_started=wall_started,
            wall_finished=time.time(),
            source_message_id=msg.source_message_id,
            schedule_id=msg.schedule_id,
            topic_name=msg.topic_name,
            queue_name=msg.queue_name,
            labels=tuple(msg.options.labels),
        )
        for listener in list(self.listeners):
            try:
                listener(attempt)
            except Exception:
                log.exception("attempt listener failed")

    async def _settle(
        self,
        msg: Message,
        response: Response | None,
        error: str | None,
        decision: Decision,
        ended: bool = False,
    ) -> None:
        """Record the attempt's outcome; one a cancel ``ended`` has no callback and no
        ERROR row: the message is cancelled."""
        now = self.clock.now_ms()
        result: dict[str, Any] = {"status": response.status if response else 0}
        if response is not None:
            result["header"] = response.header_map()
            result["body"] = response.body
        if error:
            result["error"] = error
        if msg.run_id and self.runs is not None:
            runs = self.runs
            try:
                await self._durably(lambda: runs.attempted(msg, decision, result, now))
            except Exception:  # what the logs show of a run must not hold up its message
                log.exception("recording the attempt of %s in its run failed", msg.id)
        rows: list[dict[str, Any]] = []
        callbacks: list[tuple[Message, CallbackConfig]] = []
        ready: list[Message] = []
        if decision.outcome == "delivered":
            msg.state, msg.final_at = State.DELIVERED, now
            rows.append(make_row(msg, State.DELIVERED, now, responseStatus=result["status"]))
        elif not ended:
            rows.append(
                make_row(
                    msg,
                    State.ERROR,
                    now,
                    error=error or _status_text(response),
                    responseStatus=result["status"],
                    responseHeader=result.get("header"),
                    responseBody=_json.b64(response.body) if response else None,
                    nextDeliveryTime=now + decision.delay_ms
                    if decision.delay_ms is not None
                    else None,
                )
            )
        if msg.options.callback and msg.kind == "message" and not ended:
            callbacks.append(
                (
                    callback_message(msg, "callback", msg.options.callback, result, None, now),
                    msg.options.callback,
                )
            )
        # Callbacks are stored before the message's own write: a crash in between sends a
        # callback twice (the attempt is made again), never loses it.
        if decision.outcome == "cancelled" or (
            decision.outcome == "retry" and msg.id in self.cancel_requested
        ):
            await self._add_callbacks(callbacks, now)
            await self.finish_canceled(msg, rows, now, durable=True)
        elif decision.outcome == "retry":
            assert decision.delay_ms is not None
            msg.retried += 1
            msg.state = State.RETRY
            msg.due = now + decision.delay_ms
            rows.append(make_row(msg, State.RETRY, now, nextDeliveryTime=msg.due))
            await self._add_callbacks(callbacks, now)
            await self._durably(lambda: self.store.reschedule(msg, rows))
        else:
            if decision.outcome == "failed":
                msg.state, msg.final_at = State.FAILED, now
                rows.append(
                    make_row(
                        msg,
                        State.FAILED,
                        now,
                        error=decision.reason,
                        responseStatus=result["status"],
                    )
                )
                if msg.run_id and self.runs is not None:
                    runs = self.runs
                    ready = await self._durably(lambda: runs.failed(msg, result, now))
                elif msg.kind == "message":
                    msg.dlq_id = await self._durably(lambda: self.store.dlq_add(msg, result))
                    if msg.options.failure_callback:
                        config = msg.options.failure_callback
                        callbacks.append(
                            (
                                callback_message(
                                    msg, "failure_callback", config, result, msg.dlq_id, now
                                ),
                                config,
                            )
                        )
            await self._add_callbacks(callbacks, now, ready)
            await self._finish(msg, rows, durable=True)

    async def _add_callbacks(
        self,
        made: list[tuple[Message, CallbackConfig]],
        now: int,
        ready: list[Message] | None = None,
    ) -> None:
        callbacks = list(ready or [])
        runs = self.runs
        if any(c.run_id for c, _ in made) and runs is not None:
            callbacks.extend(await self._durably(lambda: runs.adopt(made)))
        else:
            callbacks.extend(c for c, _ in made)
        if callbacks:
            rows = [make_row(c, State.CREATED, now) for c in callbacks]
            await self._durably(lambda: self.store.add(callbacks, rows))
            self.notify()


class _Ended(Exception):
    """A cancel ended the attempt in flight."""


def callback_message(
    msg: Message,
    kind: Kind,
    config: CallbackConfig,
    result: dict[str, Any],
    dlq_id: str | None,
    now: int,
    extra: dict[str, Any] | None = None,
) -> Message:
    """The callback (``kind`` "callback") or failure callback of ``msg`` after ``result``;
    ``extra`` adds to its JSON body. What follows the callback's prefix in the publish
    headers configures it as ``Upstash-*`` would configure a message."""
    header = {"Content-Type": ["application/json"], **config["header"]}
    due = now + config["delay_ms"]
    payload = callback_payload(msg, result, dlq_id)
    if extra:
        payload.update(extra)
    run = config.get("workflow")
    return Message(
        id=new_id("msg_"),
        user=msg.user,
        url=config["url"],
        options=PublishOptions(
            method=config["method"],
            header=header,
            retries=config["retries"] if config["retries"] is not None else msg.max_retries,
            retry_delay=config["retry_delay"] or msg.options.retry_delay,
            timeout_ms=config["timeout_ms"],
            failure_callback=config.get("failure_callback"),
            # Its body carries the source's body and headers: what hides them hides them too.
            redact=msg.options.redact,
            flow=config.get("flow"),
        ),
        body=_json.dumps(payload),
        created_at=now,
        not_before=due,
        due=due,
        caller_ip=msg.caller_ip,
        kind=kind,
        source_message_id=msg.id,
        queue_name=msg.queue_name,
        schedule_id=msg.schedule_id,
        topic_name=msg.topic_name,
        run_id=run["run_id"] if run else None,
        run_created_at=msg.run_created_at if run and run["run_id"] == msg.run_id else None,
        call_type=run["call_type"] if run else None,
    )


def make_row(msg: Message, state: LogState, time_ms: int, **extra: Any) -> dict[str, Any]:
    row = log_row(msg, state, time_ms, **extra)
    row["_user"] = msg.user
    return row


def _status_text(response: Response | None) -> str:
    return f"status {response.status}" if response is not None else "no response"


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and return once each has ended. A task is asked again until it has:
    Python 3.11's ``asyncio.wait_for`` drops a cancel that arrives as the thing it waits for
    completes, and the task then runs on."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.05)


async def _quietly(work: Awaitable[None]) -> None:
    """``work``, whose failure only costs the time it would have saved."""
    try:
        await work
    except Exception:
        log.debug("warming up failed", exc_info=True)


async def _now(write: Callable[[], Awaitable[T]]) -> T:
    """``write()`` once: its failure is the caller's (an API request answers 503)."""
    return await write()
