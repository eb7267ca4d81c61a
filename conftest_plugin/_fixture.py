"""``QStashFixture``: what a test gets as ``qstash``.

Each test is its own user on a shared emulator (own token, signing keys, messages, queues and
schedules), so tests cannot see or delete each other's work, even on one server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, overload

import pytest

from qstash_emulator.testing import (
    STATES,
    Emulator,
    Fault,
    FaultKind,
    User,
    VirtualClock,
    seed_ids,
)

from . import _sdk, _teardown
from ._deliveries import Delivery
from ._endpoints import Endpoint, Reply
from ._matching import Criteria, Deliveries, count_message, no_match_message
from ._options import Options
from ._pending import PendingMessage
from ._runs import WorkflowRuns
from ._server import UNBOUND
from ._time import Driver, Duration

if TYPE_CHECKING:
    from qstash import AsyncQStash, QStash, Receiver

    from qstash_emulator.contracts import Report

    from ._server import Server

__all__ = ["SEEDED_EPOCH_MS", "QStashFixture"]

# Where a seeded test's virtual clock starts: 2026-01-01T00:00:00Z.
SEEDED_EPOCH_MS = 1_767_225_600_000


class QStashFixture(WorkflowRuns):
    """A QStash emulator for one test: environment, records, assertions, clock, faults, and
    Upstash Workflow runs (``_runs.WorkflowRuns``)."""

    def __init__(self, server: Server, options: Options, test_id: str) -> None:
        self.options = options
        self._server = server
        digest = hashlib.sha256(f"{os.environ.get('PYTEST_XDIST_WORKER', '')}|{test_id}".encode())
        user_id = "pytest_" + digest.hexdigest()[:12]
        if options.seed is not None:
            seed_ids(f"{options.seed}|{test_id}")
        if isinstance(server.clock, VirtualClock):
            # Every test starts at the same point, whatever earlier tests did to the clock.
            start = SEEDED_EPOCH_MS if options.seed is not None else time.time_ns() // 1_000_000
            server.clock.restart(start)
        identity = server.identity
        shared = identity.keys if server.session_env else None
        self.user: User = server.emulator.create_user(user_id, shared)
        if server.contract is not None:
            server.contract.bind(user_id, test_id)
        server.emulator.bind_token(identity.token, user_id)
        # With the environment set for the session, the test's token is the session's.
        self._token = identity.token if server.session_env else self.user.token
        keys = (self.user.current_signing_key, self.user.next_signing_key)
        self._recorder = server.recorder(user_id, keys)
        self._driver = Driver(server, user_id, self._recorder, options.auto_advance)
        self._endpoints: list[Endpoint] = []
        self._prefixes: list[str] = []
        self._seen_dead_letters: set[str] = set()
        self._cleanups: list[Callable[[], None]] = []
        self._clients: list[QStash] = []
        server.emulator.attempts.clear()
        if options.network:
            server.allow_network(True)

    # What application code needs --------------------------------------------------------------

    @property
    def emulator(self) -> Emulator:
        """The shared emulator (an escape hatch: prefer the fixture's methods)."""
        return self._server.emulator

    @property
    def url(self) -> str:
        return self._server.emulator.url

    @property
    def token(self) -> str:
        """The token set in ``QSTASH_TOKEN`` for this test."""
        return self._token

    @property
    def current_signing_key(self) -> str:
        """This test's current signing key, after any rotation."""
        return self._server.emulator.known_keys(self.user.user_id)[0]

    @property
    def next_signing_key(self) -> str:
        """This test's next signing key, after any rotation."""
        return self._server.emulator.known_keys(self.user.user_id)[1]

    @property
    def env(self) -> dict[str, str]:
        """``QSTASH_URL``, ``QSTASH_TOKEN`` and both signing keys, as the test sees them."""
        return {**self._server.emulator.env(self.user), "QSTASH_TOKEN": self._token}

    def client(self, **kwargs: Any) -> QStash:
        """The official SDK's client, acting for this test's user.

        Kept for the session (its token stands for whichever test runs), since building one
        costs a TLS context; ``kwargs`` that are not plain values get a client of their own,
        closed at teardown.
        """
        kept = self._server.client(**kwargs)
        if kept is not None:
            return kept
        client = _sdk.new_client(self._token, self.url, **kwargs)
        self._clients.append(client)
        return client

    def async_client(self, **kwargs: Any) -> AsyncQStash:
        """The official SDK's async client, acting for this test's user; it keeps no
        connection open between requests, so nothing of it outlives the test's event loop."""
        return _sdk.new_async_client(self.token, self.url, **kwargs)

    def receiver(self) -> Receiver:
        """The official SDK's signature verifier, holding this test's keys."""
        from qstash import Receiver

        return Receiver(self.current_signing_key, self.next_signing_key)

    # Destinations -----------------------------------------------------------------------------

    def endpoint(self, path_or_url: str = "/", *steps: Any) -> Endpoint:
        """A destination answering a script: ``qstash.endpoint("/jobs").respond(500, 500, 200)``.

        A path gives a built-in endpoint (its ``.url`` is unique to this test) that answers
        200 once the script is used up. A full URL scripts that destination: once the script
        is used up, requests go where they would have gone (a mounted app, a rewrite, HTTP).
        """
        if path_or_url.startswith(("http://", "https://")):
            endpoint = Endpoint(path_or_url, self, None)
        else:
            path = path_or_url if path_or_url.startswith("/") else "/" + path_or_url
            host = self.user.user_id.replace("_", "-")
            endpoint = Endpoint(f"http://{host}.endpoint.test{path}", self, Reply(200, {}, b"ok"))
        endpoint.respond(*steps)
        self._server.scripted.add(endpoint)
        self._endpoints.append(endpoint)
        return endpoint

    def mount(self, url: str, app: Any, *, wsgi: bool | None = None) -> str:
        """Deliver requests for ``url...`` into ``app`` in process, without a socket.

        ``app`` is ASGI (FastAPI, Starlette) or WSGI (Flask, Django); ``wsgi=None`` guesses.
        """
        self._server.emulator.mount(url, app, wsgi=wsgi)
        self._prefixes.append(url)
        return url

    def rewrite(self, url: str, to: str) -> None:
        """Deliver messages published to ``url...`` at ``to...`` instead; the signature's
        ``sub`` stays the published URL, as production signs what was published."""
        self._server.emulator.rewrite(url, to)
        self._prefixes.append(url)

    def intercept_production(self, base_url: str | None = None) -> None:
        """Route httpx calls to ``base_url`` (default: the SDK's, https://qstash.upstash.io)
        into this emulator, with respx.

        For code that hard-codes the production URL. A token the emulator does not know is
        replaced by this test's, so a client built before the fixture still works.
        """
        from ._production import PRODUCTION_URL, intercept

        known = self._server.emulator.accepts
        stop = intercept(base_url or PRODUCTION_URL, self.url, self.token, known)
        self._cleanups.append(stop)

    # API faults -------------------------------------------------------------------------------

    def fail_api(
        self,
        kind: FaultKind = "error",
        *,
        status: int = 500,
        path: str = "/",
        method: str | None = None,
        times: int | None = 1,
        delay: float = 0.0,
    ) -> Fault:
        """Make the QStash API fail this test's requests: ``kind`` is "error" (``status``),
        "daily" or "burst" (429 with the headers the SDK maps to its two exceptions), or
        "drop" (the connection closes). ``times=None`` fails until the test ends."""
        fault = Fault(
            kind=kind,
            status=status,
            path=path,
            method=method,
            user=self.user.user_id,
            times=times,
            delay_s=delay,
        )
        return self._server.emulator.faults.add(fault)

    # Time -------------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The emulator's clock as an aware UTC ``datetime``; ``now_ms`` is the same in ms."""
        return datetime.fromtimestamp(self._driver.now() / 1_000, UTC)

    @property
    def now_ms(self) -> int:
        """The emulator's clock in Unix milliseconds: the unit of every time on a record
        (``Delivery.started_at``, ``PendingMessage.due``, ``schedule_times()`` ...)."""
        return self._driver.now()

    def advance(self, duration: Duration) -> datetime:
        """Move the virtual clock forward by ``duration``: seconds (a number), a ``timedelta``
        or a string such as ``"90s"``, ``"1h30m"`` or ``"7d"``, delivering everything that
        comes due on the way, in order, each at its own time. Returns the new ``now``."""
        __tracebackhide__ = True
        self._driver.advance(duration, self.options.timeout)
        return self.now

    def run_until_idle(
        self, timeout: float | None = None, max_seconds: float | None = None
    ) -> None:
        """Deliver until no message is due: retries, delays and callbacks included.

        A virtual clock jumps to each next due time (schedules, always due again, only
        within ``max_seconds``); a real clock waits. Fails listing what is still pending.
        """
        __tracebackhide__ = True
        self._driver.run_until_idle(timeout or self.options.timeout, max_seconds)

    @overload
    def wait_for(
        self, *, count: None = None, timeout: float | None = None, **criteria: Any
    ) -> Delivery: ...

    @overload
    def wait_for(
        self, *, count: int, timeout: float | None = None, **criteria: Any
    ) -> Deliveries: ...

    def wait_for(
        self, *, count: int | None = None, timeout: float | None = None, **criteria: Any
    ) -> Delivery | Deliveries:
        """Wait for a delivery attempt matching ``criteria`` (see ``assert_delivered``) and
        return it; with ``count=N``, wait for N and return them (a ``Deliveries``).

        A virtual clock auto-advances to each next due time.
        """
        __tracebackhide__ = True
        wanted = 1 if count is None else count
        if wanted < 1:
            raise ValueError(f"invalid count {count!r}: expected 1 or more")
        found = self._driver.wait_for(Criteria(criteria), wanted, timeout or self.options.timeout)
        return found[0] if count is None else Deliveries(found)

    def run_now(self, message_or_schedule_id: str) -> None:
        """Make a delayed message, a pending retry or a schedule's next run due now (moved,
        never copied), then let it be delivered."""
        __tracebackhide__ = True
        inspector = self._server.emulator.inspector
        try:
            self._driver.call(
                inspector.run_now(self.user.user_id, message_or_schedule_id),
                self.options.timeout,
                f"moving {message_or_schedule_id} to now",
            )
        except LookupError as exc:
            raise AssertionError(str(exc)) from None
        self._driver.wait_idle(self.options.timeout)

    # Inspection -------------------------------------------------------------------------------

    @property
    def deliveries(self) -> Deliveries:
        """Every delivery attempt of this test, in the order they finished."""
        return self._recorder.deliveries

    def messages(self, state: str | None = None) -> list[PendingMessage]:
        """Messages not final yet: pending, delayed, retrying, in_flight or queued."""
        if state is not None and state not in STATES:
            raise ValueError(f"invalid state {state!r}: expected one of {', '.join(STATES)}")
        now = self.now_ms
        return [
            PendingMessage.of(w, now)
            for w in self._driver.waiting()
            if state is None or w.state == state
        ]

    def dead_letters(self) -> list[dict[str, Any]]:
        """The DLQ, in the ``/v2/dlq`` shape. Reading it counts as looking at it."""
        inspector = self._server.emulator.inspector
        entries = self._driver.call(
            inspector.dead_letters(self.user.user_id), self.options.timeout, "reading the DLQ"
        )
        self._seen_dead_letters.update(e["dlqId"] for e in entries)
        return entries

    def replay_contract(
        self,
        contract: str | os.PathLike[str] | dict[str, Any],
        *,
        to: str | None = None,
        only: str | None = None,
    ) -> Report:
        """Deliver each entry's exemplar of a contract as QStash would (signed, the
        ``Upstash-*`` and forwarded headers), no retries, to ``to`` (an origin replacing the
        destination's; default the destination itself: mount your consumer there); the
        report says what was accepted, ``report.check()`` fails the test on a refusal."""
        from ._contract import replay_for

        return replay_for(
            self, contract if isinstance(contract, dict) else os.fspath(contract), to, only
        )

    def schedule_times(self, schedule_id: str, count: int = 5) -> list[int]:
        """The next ``count`` run times of a schedule: Unix ms on the emulator's clock."""
        inspector = self._server.emulator.inspector
        times = self._driver.call(
            inspector.schedule_times(self.user.user_id, schedule_id, count),
            self.options.timeout,
            f"reading the run times of {schedule_id}",
        )
        if times is None:
            raise LookupError(f"schedule {schedule_id!r} not found")
        return times

    # Assertions -------------------------------------------------------------------------------

    def assert_delivered(self, *, count: int | None = None, **criteria: Any) -> Delivery:
        """Assert a successful delivery matched every criterion; returns the last match.

        It first lets whatever is due now be delivered (it never moves the clock).

        Criteria: url (published or delivered-to URL, or a compiled regex), path, method,
        body (bytes or str), json, headers (a subset), status, outcome, message_id, kind,
        retried, where (a function of the Delivery). On failure the message lists the
        closest deliveries and how each differs, field by field.
        """
        __tracebackhide__ = True
        return self._assert(Criteria({"outcome": "delivered", **criteria}), count, "delivery")[-1]

    def assert_attempted(self, *, count: int | None = None, **criteria: Any) -> Deliveries:
        """Assert attempts (successful or not) matched; returns them."""
        __tracebackhide__ = True
        return self._assert(Criteria(criteria), count, "attempt")

    def assert_not_delivered(self, **criteria: Any) -> None:
        """Assert no attempt at all matched ``criteria``."""
        __tracebackhide__ = True
        wanted = Criteria(criteria)
        self._settle()
        matched = self.deliveries.filter(**criteria)
        if matched:
            raise AssertionError(count_message(wanted, 0, matched, "attempts"))

    def assert_dead_lettered(self, **criteria: Any) -> dict[str, Any]:
        """Assert a message matching ``criteria`` (message_id, url, ...) is in the DLQ; returns
        its entry. Its last attempt must match the criteria too."""
        __tracebackhide__ = True
        wanted = Criteria({"outcome": "failed", "kind": "message", **criteria})
        self._settle()
        failed = self.deliveries.filter(outcome="failed", kind="message")
        entries = {e["messageId"]: e for e in self.dead_letters()}
        for delivery in reversed(failed):
            if wanted.matches(delivery) and delivery.message_id in entries:
                return entries[delivery.message_id]
        raise AssertionError(
            no_match_message("no dead-lettered message matched", wanted, self.deliveries)
        )

    def _assert(self, criteria: Criteria, count: int | None, what: str) -> Deliveries:
        __tracebackhide__ = True
        self._settle()
        matched = Deliveries(d for d in self.deliveries if criteria.matches(d))
        if not matched:
            raise AssertionError(no_match_message(f"no {what} matched", criteria, self.deliveries))
        if count is not None and len(matched) != count:
            raise AssertionError(count_message(criteria, count, matched, what + "(s)"))
        return matched

    def _settle(self) -> None:
        """Let attempts that are due now finish, so an assertion never races a delivery."""
        __tracebackhide__ = True
        self._driver.wait_idle(self.options.timeout)

    # Teardown ---------------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """What the teardown checks would report now."""
        leftovers = self._driver.call(
            self._gather(purge_after=False), self.options.timeout, "checking what is left"
        )
        return self._report(leftovers)

    def _gather(self, purge_after: bool) -> Coroutine[Any, Any, _teardown.Leftovers]:
        failed = any(d.outcome == "failed" for d in self.deliveries)
        emulator = self._server.emulator
        return _teardown.gather(emulator, self.user.user_id, self.options, failed, purge_after)

    def _report(self, leftovers: _teardown.Leftovers) -> list[str]:
        faults = self._server.emulator.faults.remaining(self.user.user_id)
        return _teardown.report(
            self.options,
            self.now_ms,
            leftovers,
            self._seen_dead_letters,
            self._endpoints,
            faults,
            self.deliveries,
        )

    def close(self, check: bool) -> None:
        """End the test: run the teardown checks, then remove everything this test made."""
        __tracebackhide__ = True
        if not check:
            self.options = dataclasses.replace(self.options, checks=False)
        problems: list[str] = []
        purged = False
        try:
            for cleanup in reversed(self._cleanups):
                cleanup()
            if self.user.user_id not in self._server.active and not self.deliveries:
                problems = self._report(([], [], []))  # it never called the API: nothing stored
            else:
                leftovers = self._server.emulator.call(self._gather(True), self.options.timeout)
                problems = self._report(leftovers)
            purged = True
        except TimeoutError:
            problems = [
                f"due deliveries did not finish within {self.options.timeout:g}s\n"
                + self._driver.pending_text()
            ]
            # Tests run one at a time per emulator: what is still in flight is this test's,
            # and must not hold up the next one.
            emulator = self._server.emulator
            emulator.call(emulator.abort(), self.options.timeout)
        finally:
            self._dispose(purged)
        if problems:
            pytest.fail(_teardown.failure_text(problems), pytrace=False)

    def _dispose(self, purged: bool) -> None:
        server = self._server
        emulator = server.emulator
        for client in self._clients:
            _sdk.close(client)
        for endpoint in self._endpoints:
            server.scripted.remove(endpoint)
        for prefix in self._prefixes:
            emulator.unroute(prefix)
        if self.options.network:
            server.allow_network(False)
        user_id = self.user.user_id
        emulator.bind_token(server.identity.token, None, UNBOUND)
        server.drop_recorder(user_id)
        server.active.discard(user_id)
        if not purged:
            emulator.call(emulator.purge_user(user_id), self.options.timeout)
        emulator.remove_user(user_id)
        if self.options.seed is not None:
            seed_ids(None)
