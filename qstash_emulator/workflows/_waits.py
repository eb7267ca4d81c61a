"""Waits: a run's step that waits for an event (``context.waitForEvent``, webhooks), and the
notifications, webhook calls and timeouts that end the wait (``docs/workflow.md#waits``).

A waiter belongs to a run and an event id. A notification resolves every waiter of its event
(or of one run, which keeps the event when the run is not waiting yet), a request to the
run's webhook URL resolves its waiter the same way, and a deadline passing on the emulator's
clock times it out. Each way ends in a message published to the workflow: the wait step's
result, which the run records like any other step.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, cast

from .. import _json
from .._errors import BadRequest, EmulatorError, NotFound
from ..delivery.clock import Clock
from ..model.destination import validate_url
from ..model.durations import parse_duration_ms
from ..model.headers import H
from ..model.message import new_id
from ..model.sendable import canonical
from ..server.config import Settings
from ..services.publisher import Publisher
from ._model import Run
from ._runs import Runs
from ._store import RunStore, Waiter

__all__ = ["Waits"]

_DEFAULT_TIMEOUT = "7d"


class Waits:
    """Waiters of every user; a timer of the engine (deadlines on the emulator's clock)."""

    recurring = False  # run_until_idle moves the clock to a deadline

    def __init__(
        self, store: RunStore, runs: Runs, settings: Settings, clock: Clock, publisher: Publisher
    ) -> None:
        self.store = store
        self.runs = runs
        self.settings = settings
        self.clock = clock
        self.publisher = publisher
        runs.on_end.append(self.drop_run)
        # Whether the deadline index may hold anything: the engine asks next_due() on every
        # turn, and an emulator without waits should not pay a store read for it each time.
        # Unknown at start (a Redis that outlived an earlier emulator); a read finding the
        # index empty clears it, a new deadline stored sets it (before the engine, woken by
        # the same write, looks).
        self._maybe_waiting = True
        self._deadlines_written = 0
        store.store.due_listeners.append(self._due_written)

    def _due_written(self, index: str, when_ms: int) -> None:
        if index == self.store.store.keyspace.waits:
            self._maybe_waiting = True
            self._deadlines_written += 1

    # Waiting ------------------------------------------------------------------------------

    async def wait(
        self, user: str, event_id: str, headers: list[tuple[str, str]], body: Any
    ) -> None:
        """``POST /v2/wait/{eventId}``: the step waits; an event kept for the run (a
        notification that came first) ends the wait at once."""
        request = _wait_request(body, self.settings)
        kept = _publish_headers(headers)
        run_id = next((v for n, vs in kept.items() if n.lower() == H.RUN_ID for v in vs), None)
        if not run_id:
            raise BadRequest("invalid Upstash-Workflow-RunId: a wait needs the run's id")
        async with self.runs.locked(user, run_id):
            run = await self.store.active(user, run_id)
            if run is None:
                raise BadRequest(f"workflow run {run_id!r} does not exist or has already ended")
            now = self.clock.now_ms()
            waiter: Waiter = {
                "id": new_id("wtr_"),
                "eventId": event_id,
                "runId": run.run_id,
                "runCreatedAt": run.created_at,
                "url": request["url"],
                "headers": kept,
                "timeout": request["timeout"],
                "deadline": now + request["timeout_ms"],
                "timeoutUrl": request["timeoutUrl"],
                "timeoutHeaders": request["timeoutHeaders"],
                "step": request["step"],
                "createdAt": now,
            }
            if request["timeoutBody"] is not None:
                waiter["timeoutBody"] = request["timeoutBody"]
            data = await self.store.take_event(user, run.run_id, event_id)
            if data is None:
                await self.store.add_waiter(run, waiter)
                return
        await self._resolve(user, waiter, data)

    # Notifying ----------------------------------------------------------------------------

    async def notify(
        self, user: str, event_id: str, data: bytes, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Resolve the event's waiters (of one run, with ``run_id``: the event is kept for
        the run when it is not waiting, else it is lost); one answer per waiter."""
        waiters = await self.store.waiters(user, event_id)
        if run_id is not None:
            await self.check_run(user, run_id)
            waiters = [w for w in waiters if w["runId"] == run_id]
            if not waiters:
                await self.store.keep_event(user, run_id, event_id, data)
                return []
        answers = []
        for waiter in waiters:
            taken = await self.store.take_waiter(user, event_id, waiter["id"])
            if taken is not None:
                answers.append(await self._resolve(user, taken, data))
        return answers

    async def check_run(self, user: str, run_id: str) -> None:
        """NotFound unless the run is going."""
        if await self.store.active(user, run_id) is None:
            raise NotFound(f"workflow run {run_id!r} not found or already ended")

    async def webhook(self, user: str, run_id: str, event_id: str, capture: dict[str, Any]) -> None:
        """A request to a run's webhook URL: a notification of that run with the request."""
        await self.notify(user, event_id, _json.dumps(capture), run_id)

    async def waiters(self, user: str, event_id: str) -> list[dict[str, Any]]:
        """``GET /v2/waiters/{eventId}``."""
        return [_waiter_view(w) for w in await self.store.waiters(user, event_id)]

    async def _resolve(self, user: str, waiter: Waiter, data: bytes) -> dict[str, Any]:
        """Publish the wait step's result to the workflow; the notify answer for it."""
        step = {
            **waiter["step"],
            "waitEventId": waiter["eventId"],
            "timeout": waiter["timeout"],
            "waitTimeout": False,
            "out": _json.b64(data),
        }
        items = [(name, v) for name, values in waiter["headers"].items() for v in values]
        answer: dict[str, Any] = {
            "waiter": _waiter_view(waiter),
            "workflowRunId": waiter["runId"],
            "workflowCreatedAt": waiter["runCreatedAt"],
        }
        try:
            published = await self._publish(user, waiter["url"], items, _json.dumps(step))
            answer["messageId"] = published["messageId"]
        except EmulatorError as exc:  # the run ended meanwhile
            answer["error"] = exc.message
        return answer

    async def _publish(
        self, user: str, url: str, items: list[tuple[str, str]], body: bytes
    ) -> dict[str, Any]:
        # A waiter's URL is a URL, never a URL group: one message, one answer.
        return cast(
            dict[str, Any], await self.publisher.publish_headers(user, url, items, body, "")
        )

    # Ends ---------------------------------------------------------------------------------

    async def drop_run(self, run: Run) -> None:
        """A run that ended waits for nothing."""
        for event_id, waiter_id in await self.store.run_waiters(run):
            await self.store.take_waiter(run.user, event_id, waiter_id)

    async def next_due(self) -> int | None:
        if not self._maybe_waiting:
            return None
        written = self._deadlines_written
        deadline = await self.store.next_deadline()
        if deadline is None and written == self._deadlines_written:
            self._maybe_waiting = False
        return deadline

    async def fire(self, now_ms: int) -> None:
        """Time out the waiters whose deadline has passed: the step's result says so."""
        for user, event_id, waiter_id in await self.store.due_waiters(now_ms):
            waiter = await self.store.take_waiter(user, event_id, waiter_id)
            if waiter is None:
                await self.store.forget_deadline(user, event_id, waiter_id)
                continue
            if "timeoutBody" in waiter:
                body = base64.b64decode(waiter["timeoutBody"])
            else:
                body = _json.dumps(
                    {
                        **waiter["step"],
                        "waitEventId": event_id,
                        "timeout": waiter["timeout"],
                        "waitTimeout": True,
                    }
                )
            items = [(n, v) for n, values in waiter["timeoutHeaders"].items() for v in values]
            try:
                await self._publish(user, waiter["timeoutUrl"], items, body)
            except EmulatorError:  # the run ended meanwhile
                continue


def _publish_headers(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    """The wait request's headers that configure the result's publish (never the token)."""
    kept: dict[str, list[str]] = {}
    for name, value in headers:
        lower = name.lower()
        if lower.startswith("upstash-") or lower == H.CONTENT_TYPE:
            kept.setdefault(canonical(name), []).append(value)
    return kept


def _wait_request(body: Any, settings: Settings) -> dict[str, Any]:
    """The ``/v2/wait`` body, checked field by field."""
    if not isinstance(body, dict):
        raise BadRequest("invalid body: expected a JSON object with url, timeout and step")
    url = body.get("url")
    if not isinstance(url, str):
        raise BadRequest("invalid body.url: required, the URL to publish the event to")
    validate_url(url, "body.url")
    timeout = body.get("timeout") or _DEFAULT_TIMEOUT
    if not isinstance(timeout, str):
        raise BadRequest(f"invalid body.timeout: {timeout!r}, want a duration such as 7d")
    timeout_ms = parse_duration_ms(timeout, "body.timeout")
    if timeout_ms > settings.limits.max_delay_s * 1_000:
        raise BadRequest(f"invalid body.timeout: {timeout} exceeds the plan's maximum wait")
    timeout_url = body.get("timeoutUrl") or url
    if not isinstance(timeout_url, str):
        raise BadRequest("invalid body.timeoutUrl: expected a URL")
    validate_url(timeout_url, "body.timeoutUrl")
    headers = body.get("timeoutHeaders") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in headers.values()
    ):
        raise BadRequest("invalid body.timeoutHeaders: expected an object of string lists")
    timeout_body = body.get("timeoutBody")
    if timeout_body is not None:
        try:
            base64.b64decode(timeout_body, validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise BadRequest("invalid body.timeoutBody: expected base64") from exc
    step = body.get("step")
    if not isinstance(step, dict) or not isinstance(step.get("stepName"), str):
        raise BadRequest("invalid body.step: expected the waiting step (stepId, stepName ...)")
    return {
        "url": url,
        "timeout": timeout,
        "timeout_ms": timeout_ms,
        "timeoutUrl": timeout_url,
        "timeoutHeaders": headers,
        "timeoutBody": timeout_body,
        "step": {k: v for k, v in step.items() if v is not None},
    }


def _waiter_view(waiter: Waiter) -> dict[str, Any]:
    view: dict[str, Any] = {
        "url": waiter["url"],
        "headers": waiter["headers"],
        "deadline": waiter["deadline"] // 1_000,
        "timeoutUrl": waiter["timeoutUrl"],
        "timeoutHeaders": waiter["timeoutHeaders"],
    }
    if "timeoutBody" in waiter:
        view["timeoutBody"] = waiter["timeoutBody"]
    return view
