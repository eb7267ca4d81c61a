"""Workflow runs: started and extended by publishes, delivered with their history, ended.

A run is the ordered list of the messages published for it (``docs/workflow.md``). Each
delivery of a step carries that list up to and including the delivered message; the endpoint
(the official SDK) replays it, runs one more step and publishes its result, until it ends the
run with ``DELETE /v2/workflows/runs/{id}``. The publisher asks ``admit`` before it stores a
message of a run; the engine's hooks for their deliveries are ``_delivery.RunMessages``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from .. import _json
from .._errors import BadRequest, NotFound
from ..delivery.clock import Clock
from ..delivery.engine import Engine
from ..model.destination import is_url
from ..model.headers import H
from ..model.message import Message, new_id
from ..model.options import CallbackConfig, PublishOptions, RunHeaders
from ..model.sendable import canonical
from ..server.config import Settings
from ..server.masking import mask_secrets
from ..services.publisher import Publisher
from ..store.group_commit import Fill
from ._logs import RunFilter, select_runs
from ._model import TRIGGER_API, UNKNOWN_SDK, CallType, Run, RunState, RunStep
from ._store import RunStore

__all__ = ["Runs"]

log = logging.getLogger("qstash_emulator")

# Publishes a message: (user, destination, headers as items, body, caller ip).
# What the SDKs look for in a failure function's call.
_FAILURE_HEADERS = {
    "Upstash-Workflow-Is-Failure": ["true"],
    "Upstash-Workflow-Failure-Callback": ["true"],
}


@dataclass
class _Admission:
    """What ``Runs.admit`` tells the publisher about one message of a run."""

    opts: PublishOptions
    body: bytes
    duplicate: str | None = None
    run: Run | None = None
    create: bool = False
    store: RunStore | None = None
    restart: bool = False  # the SDK starts a run the trigger API made for it: from scratch

    def record(self, msg: Message) -> Fill:
        assert self.run is not None and self.store is not None and msg.run_id is not None
        run = self.run
        msg.run_created_at = run.created_at
        step = RunStep.of(msg, msg.call_type or CallType.STEP)
        if self.create:
            run.init_message_id = msg.id
            return self.store.created(run, [step], replace=self.restart)
        return self.store.appended(run, [step])


class Runs:
    """Every run of every user; the engine's and the publisher's hooks for run messages."""

    def __init__(
        self,
        store: RunStore,
        settings: Settings,
        clock: Clock,
        engine: Engine,
        publisher: Publisher,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.engine = engine
        # How a run publishes the messages it makes (its first step, invoke results).
        self.publisher = publisher
        # Told when a run ends, so that its waiters go with it.
        self.on_end: list[Callable[[Run], Awaitable[None]]] = []
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def locked(self, user: str, run_id: str) -> AsyncIterator[None]:
        """Hold the run id of ``user``: starts, appends and ends of one run never interleave."""
        key = (user, run_id)
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    # Publishing ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def admit(
        self,
        user: str,
        url: str,
        opts: PublishOptions,
        body: bytes,
        caller_ip: str,
        now: int,
    ) -> AsyncIterator[_Admission]:
        """Check a message of a run while the run is held: a new run, a duplicate start, or
        a message of a running run (400 once the run has ended, which the SDKs read as "the
        run is over")."""
        tag = opts.workflow
        assert tag is not None
        async with self.locked(user, tag["run_id"]):
            if tag["init"]:
                running = await self.store.active(user, tag["run_id"])
                restart = running is not None and tag["by_sdk"] and UNKNOWN_SDK in running.features
                if running is not None and not restart:
                    yield _Admission(opts, body, duplicate=running.init_message_id)
                    return
                invoker = None
                if tag["invoke"]:
                    body, invoker = _unwrap_invoke(body)
                created_at = running.created_at if running is not None else now
                # An id used again within one millisecond (a clock that stands still).
                while not restart and await self.store.exists(user, tag["run_id"], created_at):
                    created_at += 1
                run = Run(
                    user=user,
                    run_id=tag["run_id"],
                    url=tag["url"] or url,
                    created_at=created_at,
                    init_message_id="",
                    headers=_user_headers(opts.header),
                    features=tag["features"],
                    caller_ip=caller_ip,
                    invoker=invoker,
                    options=Run.kept(opts),
                )
                yield _Admission(
                    opts, body, run=run, create=True, store=self.store, restart=restart
                )
                if not restart:
                    # The logs keep about as many runs as log rows: the oldest ended ones go.
                    await self.store.forget_old(user, self.settings.log_retention)
                return
            running = await self.store.active(user, tag["run_id"])
            if running is None:
                raise BadRequest(
                    f"workflow run {tag['run_id']!r} does not exist or has already ended"
                )
            if tag["call_type"] == CallType.STEP:
                # A step with no settings of its own takes the trigger's.
                opts = running.applied(opts)
            yield _Admission(opts, body, run=running, store=self.store)

    async def trigger(
        self,
        user: str,
        url: str,
        opts: PublishOptions,
        body: bytes,
        caller_ip: str,
        unknown_sdk: bool = False,
    ) -> dict[str, Any]:
        """The trigger API: the server starts the run and delivers its first step (to an SDK
        that did not say its version: with the run id, for the SDK to start the run itself).
        Its failure function is the workflow's own unless a failure URL is given."""
        if not is_url(url):
            raise BadRequest(f"invalid destination: {url!r}: a workflow is triggered at a URL")
        run_id = opts.workflow["run_id"] if opts.workflow else new_id("wfr_", 21)
        header = dict(opts.header)
        if not unknown_sdk:
            header[canonical(H.SDK_VERSION)] = ["1"]
        failure = opts.failure_callback or _default_failure(url)
        failure = CallbackConfig(**{**failure, "header": {**_FAILURE_HEADERS, **failure["header"]}})
        features = ["LazyFetch", "InitialBody", "WF_TriggerOnConfig", TRIGGER_API]
        opts = dataclasses.replace(
            opts,
            header=header,
            failure_callback=failure,
            workflow=RunHeaders(
                run_id=run_id,
                init=True,
                url=url,
                call_type=CallType.STEP,
                invoke=False,
                features=[*features, UNKNOWN_SDK] if unknown_sdk else features,
                by_sdk=False,
            ),
        )
        # To a URL (checked above), never a URL group: one message, one answer.
        published = cast(
            dict[str, Any], await self.publisher.publish(user, url, opts, body, caller_ip)
        )
        run = await self.store.active(user, run_id)
        answer: dict[str, Any] = {
            "workflowRunId": run_id,
            "workflowCreatedAt": run.created_at if run is not None else None,
        }
        if published.get("deduplicated"):
            answer["deduplicated"] = True
        return answer

    # Delivery (the engine's hooks) --------------------------------------------------------

    async def run_of(self, msg: Message) -> Run | None:
        if msg.run_id is None:
            return None
        if msg.run_created_at is None:
            return await self.store.active(msg.user, msg.run_id)
        return await self.store.get(msg.user, msg.run_id, msg.run_created_at)

    # Ends ---------------------------------------------------------------------------------

    async def finish(self, user: str, run_id: str, response: str) -> None:
        """The SDK's ``DELETE ...?cancel=false``: the function returned ``response``. A run
        that is not running is left as it is: the SDK may report an end twice."""
        async with self.locked(user, run_id):
            run = await self.store.active(user, run_id)
            if run is None:
                return
            run.response = response
            await self.end(run, RunState.SUCCESS, self.clock.now_ms())

    async def cancel(self, user: str, run_id: str) -> None:
        """``DELETE ...?cancel=true``, from the client or from inside the run."""
        async with self.locked(user, run_id):
            run = await self._running(user, run_id)
            await self.end(run, RunState.CANCELED, self.clock.now_ms())

    async def cancel_many(self, user: str, ids: list[str], flt: RunFilter, count: int) -> int:
        """Bulk cancel: the running runs named by ``ids``, else those ``flt`` matches."""
        candidates: list[tuple[str, int | None]]
        if ids:
            candidates = [(run_id, None) for run_id in dict.fromkeys(ids)]
        else:
            candidates = [(r.run_id, r.created_at) for r in await self._matching(user, flt)]
        cancelled = 0
        for run_id, created_at in candidates:
            if cancelled >= count:
                break
            async with self.locked(user, run_id):
                run = await self.store.active(user, run_id)
                if run is None or (created_at is not None and run.created_at != created_at):
                    continue
                await self.end(run, RunState.CANCELED, self.clock.now_ms())
                cancelled += 1
        return cancelled

    async def _matching(self, user: str, flt: RunFilter) -> list[Run]:
        found, _ = await select_runs(self.store, user, flt, None, 10_000)
        return found

    async def _running(self, user: str, run_id: str) -> Run:
        run = await self.store.active(user, run_id)
        if run is None:
            raise NotFound(f"workflow run {run_id!r} not found or already ended")
        return run

    async def end(self, run: Run, state: str, now: int, skip: str | None = None) -> None:
        """End ``run`` (held by the caller): later messages are refused, waiting ones
        dropped (not the one being delivered when the run succeeds, nor ``skip``), waiters
        removed and an invoking run told."""
        run.state, run.completed_at = state, now
        await self.store.save(run)
        statuses = await self.store.statuses(run)
        for step in await self.store.steps(run):
            if step.message_id == skip:
                continue
            msg = await self.engine.store.get(step.message_id)
            if msg is None or msg.user != run.user:
                continue
            if state == RunState.SUCCESS and (
                self.engine.is_in_flight(msg.id) or msg.call_type == CallType.TO_CALLBACK
            ):
                continue
            if await self.engine.cancel(msg):
                status = statuses.get(msg.id) or {"retries": msg.retried}
                await self.store.set_status(run, msg.id, {**status, "state": "STEP_CANCELED"})
        for hook in self.on_end:
            await hook(run)
        if run.invoker is not None:
            await self._tell_invoker(run)
        if state != RunState.FAILED:  # a dead letter's run keeps its bodies for a resume
            await self.store.shelve(run)

    async def _tell_invoker(self, run: Run) -> None:
        """The child run ended: its result is the parent's Invoke step."""
        invoker = run.invoker
        assert invoker is not None
        out = {
            "body": run.response,
            "isFailed": run.state == RunState.FAILED,
            "isCanceled": run.state == RunState.CANCELED,
        }
        step = {**invoker["step"], "stepType": "Invoke", "out": _json.dumps(out).decode()}
        items = [(name, v) for name, values in invoker["headers"].items() for v in values]
        try:
            # A workflow's URL, never a URL group: one message, one answer.
            published = cast(
                dict[str, Any],
                await self.publisher.publish_headers(
                    run.user, invoker["workflowUrl"], items, _json.dumps(step), run.caller_ip
                ),
            )
        except (BadRequest, NotFound) as exc:  # the parent ended meanwhile
            reason = mask_secrets(exc.message)  # it may quote the parent's URL
            log.info("invoke result of %s not delivered: %s", run.run_id, reason)
            return
        parent = await self.store.get(
            run.user, invoker["workflowRunId"], invoker.get("workflowRunCreatedAt") or 0
        ) or await self.store.active(run.user, invoker["workflowRunId"])
        if parent is not None:
            await self.store.set_invoked(
                parent,
                published["messageId"],
                {
                    "invokedWorkflowRunId": run.run_id,
                    "invokedWorkflowUrl": run.url,
                    "invokedWorkflowCreatedAt": run.created_at,
                    "invokedWorkflowRunBody": (await self.initial_payload(run)).decode(
                        "utf-8", "replace"
                    ),
                    "invokedWorkflowRunHeaders": run.headers,
                },
            )

    # Reading ------------------------------------------------------------------------------

    async def history(self, user: str, run_id: str) -> list[dict[str, Any]]:
        """``GET /v2/workflows/runs/{id}``: every message of a running run (404 once ended)."""
        run = await self._running(user, run_id)
        return [s.raw() for s in await self.store.steps(run)]

    async def initial_payload(self, run: Run) -> bytes:
        steps = await self.store.steps(run)
        return steps[0].body if steps else b""


def _default_failure(url: str) -> CallbackConfig:
    """The workflow's own failure function, for a run the trigger API started."""
    return CallbackConfig(
        url=url,
        method="POST",
        timeout_ms=None,
        retries=None,
        retry_delay=None,
        delay_ms=0,
        header={},
    )


def _user_headers(header: dict[str, list[str]]) -> dict[str, list[str]]:
    """The trigger's forwarded headers a run sends again: not the SDK's own workflow ones."""
    return {
        name: values
        for name, values in header.items()
        if not name.lower().startswith(H.WORKFLOW_PREFIX) and name.lower() != H.CONTENT_TYPE
    }


def _unwrap_invoke(body: bytes) -> tuple[bytes, dict[str, Any]]:
    """A child run's start carries an envelope: the payload and how to answer the parent."""
    try:
        envelope = _json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"invalid body: an invoke envelope must be JSON ({exc})") from exc
    if not isinstance(envelope, dict):
        raise BadRequest("invalid body: an invoke envelope must be a JSON object")
    for name, kind in (
        ("workflowRunId", str),
        ("workflowUrl", str),
        ("headers", dict),
        ("step", dict),
    ):
        if not isinstance(envelope.get(name), kind):
            raise BadRequest(f"invalid body.{name}: required in an invoke envelope")
    payload = envelope.get("body")
    headers = {
        canonical(name): [str(v) for v in (values if isinstance(values, list) else [values])]
        for name, values in envelope["headers"].items()
    }
    invoker = {
        "workflowRunId": envelope["workflowRunId"],
        "workflowUrl": envelope["workflowUrl"],
        "workflowRunCreatedAt": envelope.get("workflowRunCreatedAt"),
        "headers": headers,
        "step": envelope["step"],
    }
    text = payload if isinstance(payload, str) else _json.dumps(payload).decode()
    return (text.encode() if payload is not None else b""), invoker
