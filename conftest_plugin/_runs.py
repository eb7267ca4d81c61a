"""Upstash Workflow runs in the ``qstash`` fixture: look at them, assert on them, wait for
them to end, and notify the events they wait for.

A run is read in the shape ``GET /v2/workflows/logs`` gives it (its steps with their outputs,
what is still pending, the failure function's call) plus the events it waits for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qstash_emulator.testing import Emulator, RunFilter, run_log, select_runs

if TYPE_CHECKING:
    from ._options import Options
    from ._server import Server
    from ._time import Driver

__all__ = [
    "RUN_FIELDS",
    "RunCriteria",
    "RunStep",
    "WorkflowRun",
    "WorkflowRuns",
    "no_run_message",
    "run_records",
    "unfinished_text",
]

RUN_FIELDS = ("run_id", "url", "state", "steps", "outputs", "result", "response", "label", "where")
_ENDED = ("RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED")


def _parsed(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class RunStep:
    """One step of a run as the logs show it; ``out`` is its output, parsed from JSON."""

    name: str
    type: str
    out: Any
    step_id: int | None
    message_id: str
    created_at: int  # Unix ms on the emulator's clock
    concurrent: int
    fields: dict[str, Any] = field(repr=False)  # all the logs show (sleepFor, callUrl ...)


@dataclass(frozen=True)
class WorkflowRun:
    """A run of a workflow: its state, steps and outputs, and what it still waits for."""

    run_id: str
    url: str
    state: str
    created_at: int  # Unix ms on the emulator's clock, like completed_at
    completed_at: int | None
    response: str | None  # the function's return value, as the SDK sent it (JSON text)
    steps: tuple[RunStep, ...]  # the init step first: its out is the run's payload
    pending: tuple[dict[str, Any], ...]  # messages not delivered yet (state, errors)
    waiting_for: tuple[str, ...]  # event ids of the run's waiters
    failure: dict[str, Any] | None  # the failure function's call (state, failStatus ...)
    dlq_id: str | None
    label: str | None
    log: dict[str, Any] = field(repr=False)  # the whole /v2/workflows/logs entry

    @classmethod
    def of(cls, log: dict[str, Any], waiting_for: list[str]) -> WorkflowRun:
        steps: list[RunStep] = []
        pending: tuple[dict[str, Any], ...] = ()
        for group in log["steps"]:
            if group["type"] == "next":
                pending = tuple(group["steps"])
                continue
            for step in group["steps"]:
                steps.append(
                    RunStep(
                        name=step["stepName"],
                        type=step["stepType"],
                        out=_parsed(step.get("out")),
                        step_id=step.get("stepId"),
                        message_id=step["messageId"],
                        created_at=step["createdAt"],
                        concurrent=step.get("concurrent", 1),
                        fields=step,
                    )
                )
        return cls(
            run_id=log["workflowRunId"],
            url=log["workflowUrl"],
            state=log["workflowState"],
            created_at=log["workflowRunCreatedAt"],
            completed_at=log.get("workflowRunCompletedAt"),
            response=log.get("workflowRunResponse"),
            steps=tuple(steps),
            pending=pending,
            waiting_for=tuple(waiting_for),
            failure=log.get("failureFunction"),
            dlq_id=log.get("dlqId"),
            label=log.get("label"),
            log=log,
        )

    @property
    def finished(self) -> bool:
        return self.state in _ENDED

    @property
    def payload(self) -> Any:
        """The run's initial payload, parsed from JSON when it is JSON."""
        return self.steps[0].out if self.steps else None

    @property
    def result(self) -> Any:
        """What the workflow function returned, parsed from JSON when it is JSON."""
        return _parsed(self.response)

    @property
    def step_names(self) -> list[str]:
        """The steps' names in order, the init step left out."""
        return [s.name for s in self.steps[1:]]

    @property
    def outputs(self) -> dict[str, Any]:
        """Each step's output by name (the init step left out)."""
        return {s.name: s.out for s in self.steps[1:]}

    def step(self, name: str) -> RunStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"run {self.run_id} has no step {name!r}; its steps: {self.step_names}")

    def describe(self) -> str:
        """One line: id, URL, state and where it stands."""
        text = f"{self.run_id} {self.url} {self.state}, steps {self.step_names}"
        if self.waiting_for:
            text += f"; waiting for {', '.join(self.waiting_for)}"
        for pending in self.pending:
            text += f"; {pending['messageId']} {pending['state']}"
            if pending.get("errors"):
                last = pending["errors"][-1]
                text += f" (last: {last['error']}: {str(last.get('body', ''))[:80]!r})"
        if self.failure is not None:
            text += f"; failure function {self.failure.get('state')}"
        return text


class RunCriteria:
    """What a test expects of a run; each mismatch is named."""

    def __init__(self, criteria: Mapping[str, Any]) -> None:
        unknown = sorted(set(criteria) - set(RUN_FIELDS))
        if unknown:
            raise TypeError(
                f"unknown run criteria: {', '.join(unknown)}; expected any of "
                f"{', '.join(RUN_FIELDS)}"
            )
        self.items = dict(criteria)

    def describe(self) -> str:
        if not self.items:
            return "any run"
        return ", ".join(
            f"where={getattr(v, '__name__', 'predicate')}" if k == "where" else f"{k}={v!r}"
            for k, v in self.items.items()
        )

    def mismatches(self, run: WorkflowRun) -> list[str]:
        found = []
        for name, wanted in self.items.items():
            if name == "where":
                if not wanted(run):
                    found.append(f"where: {getattr(wanted, '__name__', 'predicate')} is false")
                continue
            if name == "steps":
                actual: Any = run.step_names
            elif name == "outputs":
                actual = {k: run.outputs.get(k) for k in wanted}
            else:
                actual = getattr(run, name)
            if actual != wanted:
                found.append(f"{name} {actual!r} != {wanted!r}")
        return found

    def matches(self, run: WorkflowRun) -> bool:
        return not self.mismatches(run)


def no_run_message(headline: str, criteria: RunCriteria, runs: list[WorkflowRun]) -> str:
    """The headline, then each run (closest first) with how it differs."""
    lines = [f"{headline}: {criteria.describe()}"]
    if not runs:
        lines.append("No workflow run was started in this test.")
        return "\n".join(lines)
    ranked = sorted(runs, key=lambda r: len(criteria.mismatches(r)))
    lines.append(f"{len(runs)} run(s), closest first:")
    for run in ranked[:5]:
        lines.append(f"  {run.describe()}")
        lines.extend(f"    {miss}" for miss in criteria.mismatches(run))
    return "\n".join(lines)


async def run_records(emulator: Emulator, user_id: str) -> list[WorkflowRun]:
    """Every run of the user, newest first."""
    store = emulator.runs.store
    found, _ = await select_runs(store, user_id, RunFilter(), None, 1_000_000)
    records = []
    for run in found:
        events = sorted({event for event, _ in await store.run_waiters(run)})
        records.append(WorkflowRun.of(await run_log(store, run), events))
    return records


def _data(data: Any) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return json.dumps(data).encode()


class WorkflowRuns:
    """The fixture's workflow members (``QStashFixture`` is one)."""

    _server: Server
    _driver: Driver
    options: Options
    user: Any

    def runs(self, **criteria: Any) -> list[WorkflowRun]:
        """This test's workflow runs matching ``criteria`` (see ``assert_run``), newest first."""
        wanted = RunCriteria(criteria)
        return [r for r in self._runs() if wanted.matches(r)]

    def run(self, run_id: str) -> WorkflowRun:
        """The newest run with this id."""
        __tracebackhide__ = True
        for run in self._runs():
            if run.run_id == run_id:
                return run
        known = ", ".join(r.run_id for r in self._runs()) or "none"
        raise LookupError(f"no workflow run {run_id!r} in this test (runs: {known})")

    def assert_run(self, run_id: str | None = None, **criteria: Any) -> WorkflowRun:
        """Assert a run matches every criterion; returns the newest match.

        It first lets whatever is due now be delivered (it never moves the clock).
        Criteria: run_id, url, state (RUN_STARTED, RUN_SUCCESS, RUN_FAILED, RUN_CANCELED),
        steps (the step names in order, init left out), outputs (a subset, by step name),
        result (the parsed return value), response (its text), label, where (a function of
        the WorkflowRun). On failure the message lists the runs and how each differs.
        """
        __tracebackhide__ = True
        if run_id is not None:
            criteria["run_id"] = run_id
        wanted = RunCriteria(criteria)
        self._driver.wait_idle(self.options.timeout)
        runs = self._runs()
        for run in runs:
            if wanted.matches(run):
                return run
        raise AssertionError(no_run_message("no workflow run matched", wanted, runs))

    def wait_for_run(
        self, run_id: str | None = None, *, timeout: float | None = None, **criteria: Any
    ) -> WorkflowRun:
        """Carry runs forward until one matching ``criteria`` has ended, and return it.

        A virtual clock jumps over sleeps, retries and wait timeouts; a real one waits.
        """
        __tracebackhide__ = True
        if run_id is not None:
            criteria["run_id"] = run_id
        wanted = RunCriteria(criteria)
        limit = timeout or self.options.timeout
        deadline = time.monotonic() + limit
        while True:
            if self._server.virtual:
                self._driver.run_until_idle(max(0.1, deadline - time.monotonic()), None)
            else:
                self._driver.wait_idle(max(0.1, deadline - time.monotonic()))
            runs = self._runs()
            for run in runs:
                if run.finished and wanted.matches(run):
                    return run
            if self._server.virtual or time.monotonic() > deadline:
                headline = (
                    "no workflow run matching this ended once nothing was left to run"
                    if self._server.virtual
                    else f"no workflow run matching this ended within {limit:g}s"
                )
                raise AssertionError(no_run_message(headline, wanted, runs))
            time.sleep(0.02)

    def notify(self, event_id: str, data: Any = None, *, run_id: str | None = None) -> Any:
        """Notify the runs waiting for ``event_id`` (``data``: bytes, text, or JSON); with
        ``run_id``, that run only, kept for it if it does not wait yet. Returns the notify
        answer (one entry per waiter)."""
        waits = self._server.emulator.waits
        return self._server.emulator.call(
            waits.notify(self.user.user_id, event_id, _data(data), run_id), self.options.timeout
        )

    def waiters(self, event_id: str) -> list[dict[str, Any]]:
        """The waiters of ``event_id``, as ``GET /v2/waiters/{eventId}`` shows them."""
        waits = self._server.emulator.waits
        found: list[dict[str, Any]] = self._server.emulator.call(
            waits.waiters(self.user.user_id, event_id)
        )
        return found

    def _runs(self) -> list[WorkflowRun]:
        emulator = self._server.emulator
        return emulator.call(run_records(emulator, self.user.user_id), self.options.timeout)


def unfinished_text(runs: list[WorkflowRun]) -> str:
    """The teardown check's paragraph for runs left running."""
    lines = [f"  {run.describe()}" for run in runs]
    return (
        f"{len(runs)} workflow run(s) not finished (carry them to their end with "
        "qstash.wait_for_run(...) or qstash.run_until_idle(), notify what they wait for, or "
        "cancel them):\n" + "\n".join(lines)
    )
