"""The workflow DLQ: the dead letters of failed runs, shown with their run, and what can be
done with them: resume the run where it failed, restart it, call its failure function again
(``docs/workflow.md#dead-letters``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .._errors import BadRequest, NotFound
from ..delivery.engine import make_row
from ..model.message import DeadLetter, Message, State, new_id
from ..model.options import PublishOptions
from ..model.views import dlq_view
from ..store.core import Store
from ._delivery import RunMessages
from ._model import TRIGGER_API, UNKNOWN_SDK, CallType, Run, RunStep
from ._runs import Runs

__all__ = ["DlqFilter", "RunDlq"]


@dataclass
class DlqFilter:
    """Which workflow dead letters a listing or bulk action applies to."""

    workflow_url: str | None = None
    run_id: str | None = None
    created_at: int | None = None
    label: str | None = None
    failure_state: str | None = None
    caller_ip: str | None = None
    flow_keys: list[str] = field(default_factory=list)
    from_date: int | None = None
    to_date: int | None = None
    url: str | None = None
    response_status: int | None = None

    def matches(self, view: dict[str, Any]) -> bool:
        wanted = (
            ("workflowUrl", self.workflow_url),
            ("workflowRunId", self.run_id),
            ("workflowCreatedAt", self.created_at),
            ("label", self.label),
            ("failureFunctionState", self.failure_state),
            ("callerIP", self.caller_ip),
            ("url", self.url),
            ("responseStatus", self.response_status),
        )
        if any(value is not None and view.get(key) != value for key, value in wanted):
            return False
        if self.flow_keys and view.get("flowControlKey") not in self.flow_keys:
            return False
        if self.from_date is not None and view["createdAt"] < self.from_date:
            return False
        return self.to_date is None or view["createdAt"] <= self.to_date


class RunDlq:
    """Dead letters of runs (those of plain messages are ``/v2/dlq``'s alone)."""

    def __init__(self, runs: Runs, messages: RunMessages, store: Store) -> None:
        self.runs = runs
        self.messages = messages
        self.store = store

    async def view(self, letter: DeadLetter) -> dict[str, Any] | None:
        """The dead letter with its run's fields; None when it is not a run's."""
        dlq_id, msg, response = letter.dlq_id, letter.message, letter.response
        if msg.run_id is None:
            return None
        run = await self.runs.run_of(msg)
        view = dlq_view(msg, dlq_id, response)
        view["workflowRunId"] = msg.run_id
        view["workflowCreatedAt"] = msg.run_created_at
        view["workflowUrl"] = run.url if run is not None else msg.url
        if run is None:
            return view
        config = msg.options.failure_callback or run.options.failure_callback
        if config is not None:
            view["failureCallback"] = config["url"]
        if run.failure is not None:
            info = {
                key: run.failure[key]
                for key in ("state", "responseStatus", "responseBody", "responseHeaders")
                if key in run.failure
            }
            view["failureCallbackInfo"] = info
            view["failureFunctionState"] = info["state"]
        if run.options.labels:
            view["label"] = run.options.labels[0]
        return view

    async def select(
        self,
        user: str,
        ids: list[str],
        flt: DlqFilter,
        cursor: str | None,
        count: int,
        latest_first: bool = True,
    ) -> tuple[list[tuple[str, dict[str, Any], DeadLetter]], str | None]:
        """Matching dead letters of runs, a page of up to ``count`` from ``cursor``: (dlq id,
        view, dead letter) each, and the next page's cursor."""
        if ids:
            letters: list[DeadLetter] = []
            for dlq_id in dict.fromkeys(ids):
                letter = await self.store.dlq_get(user, dlq_id)
                if letter is not None:
                    letters.append(letter)
            after = None
        else:
            letters, after = await self.store.dlq_page(
                user, cursor, count, latest_first, lambda d: d.message.run_id is not None
            )
        found = []
        for letter in letters:
            view = await self.view(letter)
            if view is not None and (ids or flt.matches(view)):
                found.append((letter.dlq_id, view, letter))
        return found, after

    async def get(self, user: str, dlq_id: str) -> tuple[dict[str, Any], DeadLetter]:
        letter = await self.store.dlq_get(user, dlq_id)
        view = await self.view(letter) if letter is not None else None
        if view is None or letter is None:
            raise NotFound(f"workflow dlq entry {dlq_id!r} not found")
        return view, letter

    async def delete(self, user: str, ids: list[str]) -> int:
        return len(await self.store.dlq_take(user, ids))

    async def resume(
        self,
        user: str,
        dlq_id: str,
        letter: DeadLetter,
        opts: PublishOptions,
        given: set[str],
        *,
        restart: bool,
    ) -> dict[str, Any]:
        """A new run (a new id) carries on from the failed one: with the steps recorded
        before the failing message and that message again (resume), or from its first
        message (restart). Headers given with the request override the run's settings."""
        msg = letter.message
        old = await self.runs.run_of(msg)
        if old is None:
            raise BadRequest(f"workflow dlq entry {dlq_id!r}: its run is no longer known")
        if not await self.store.dlq_take(user, [dlq_id]):
            raise NotFound(f"workflow dlq entry {dlq_id!r} not found")
        now = self.runs.clock.now_ms()
        run = _continued(old, new_id("wfr_", 21), now, opts, given)
        steps = await self.runs.store.steps(old)
        if restart or not steps:
            kept: list[RunStep] = []
            first = steps[0] if steps else RunStep.of(msg, CallType.STEP)
            again = _from_step(first, run, self.runs.settings.default_retries)
        else:
            at = next((i for i, s in enumerate(steps) if s.message_id == msg.id), len(steps))
            kept = steps[:at]
            again = dataclasses.replace(
                msg,
                id=new_id("msg_"),
                retried=0,
                state=State.CREATED,
                final_at=None,
                dlq_id=None,
            )
        again.run_id, again.run_created_at, again.created_at = run.run_id, run.created_at, now
        again.due = opts.due(now)
        again.not_before = again.due
        again.options = run.message_options(
            again.options, self.runs.settings.default_retries, given
        )
        run.init_message_id = kept[0].message_id if kept else again.id
        record = self.runs.store.created(run, [*kept, RunStep.of(again, again.call_type or "")])
        await self.store.add([again], [make_row(again, State.CREATED, now)], record)
        self.runs.engine.notify()
        return {"workflowRunId": run.run_id, "workflowCreatedAt": run.created_at}

    async def retry_failure(self, user: str, dlq_id: str) -> dict[str, Any]:
        """Call a failed run's failure function again, when its last call failed."""
        view, letter = await self.get(user, dlq_id)
        msg, response = letter.message, letter.response
        run = await self.runs.run_of(msg)
        if run is None or run.failure is None or run.failure.get("state") != "CALLBACK_FAIL":
            state = view.get("failureFunctionState", "none")
            raise BadRequest(
                f"workflow dlq entry {dlq_id!r}: the failure function has not failed ({state})"
            )
        now = self.runs.clock.now_ms()
        async with self.runs.locked(user, run.run_id):
            call = await self.messages.failure_call(run, msg, response, dlq_id, now)
            assert call is not None
            await self.runs.store.save(run)
            await self.store.add([call], [make_row(call, State.CREATED, now)])
        self.runs.engine.notify()
        return {"workflowRunId": run.run_id, "workflowCreatedAt": run.created_at}

    async def cancel_failure(self, user: str, dlq_id: str) -> None:
        """Stop a failed run's failure function call that is still in progress."""
        _, letter = await self.get(user, dlq_id)
        run = await self.runs.run_of(letter.message)
        state = (run.failure or {}).get("state") if run is not None else None
        if run is None or run.failure is None or state != "CALLBACK_INPROGRESS":
            raise BadRequest(
                f"workflow dlq entry {dlq_id!r}: no failure function call in progress ({state})"
            )
        async with self.runs.locked(user, run.run_id):
            call = await self.store.get(run.failure["messageId"])
            if call is not None:
                await self.runs.engine.cancel(call)
            run.failure["state"] = "CALLBACK_CANCELED"
            await self.runs.store.save(run)


def _continued(old: Run, run_id: str, now: int, opts: PublishOptions, given: set[str]) -> Run:
    """The run that resumes or restarts ``old``, with the overrides given."""
    run = dataclasses.replace(
        old,
        run_id=run_id,
        created_at=now,
        init_message_id="",
        state="RUN_STARTED",
        completed_at=None,
        response=None,
        dlq_id=None,
        failure=None,
        invoker=None,
        features=[f for f in old.features if f not in (TRIGGER_API, UNKNOWN_SDK)],
    )
    run.override(opts, given)
    return run


def _from_step(step: RunStep, run: Run, default_retries: int) -> Message:
    """The run's first message again, from what the run recorded of it and its settings."""
    return Message(
        id=new_id("msg_"),
        user=run.user,
        url=run.url,
        created_at=0,
        not_before=0,
        options=run.message_options(
            PublishOptions(method=step.method, header=step.header), default_retries
        ),
        body=step.body,
        caller_ip=run.caller_ip,
        call_type=CallType.STEP,
    )
