"""How a workflow run's messages go out, and what their attempts do to the run: the engine's
hooks for the messages of a run (``docs/workflow.md#deliveries``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import _json
from ..delivery.engine import RunDelivery, callback_message
from ..delivery.retry import Decision
from ..delivery.transport import Response
from ..model.headers import H
from ..model.message import Message
from ..model.options import CallbackConfig
from ..server.config import Settings
from ._model import TRIGGER_API, UNKNOWN_SDK, CallType, Run, RunState, RunStep
from ._runs import Runs

__all__ = ["NON_WORKFLOW", "OLD_SDK", "RunMessages"]

NON_WORKFLOW = (
    "detected a non-workflow destination for trigger/invoke. "
    "make sure you are sending the request to the correct endpoint"
)
OLD_SDK = "trigger rest api is only usable with sdk versions after v1.0.0 major version"


class RunMessages:
    """The engine's ``RunHooks``: bodies and headers of a run's deliveries, the checks of
    their answers, and a run's failure when one of them fails for good."""

    def __init__(self, runs: Runs) -> None:
        self.runs = runs
        self.store = runs.store
        self.settings = runs.settings
        self.engine = runs.engine
        self._detect: dict[str, str] = {}  # first step's message id -> the check it gets

    async def outgoing(self, msg: Message) -> RunDelivery:
        """A step goes out with the run's history up to and including itself; every message
        of a run with the run's id, and those to the workflow with the trigger's headers."""
        if msg.call_type == CallType.TO_CALLBACK:  # a third party's request is its own
            return RunDelivery(msg.body)
        run = await self.runs.run_of(msg)
        assert msg.run_id is not None
        overlay = {H.OUT_RUN_ID: msg.run_id}
        if run is None:
            return RunDelivery(msg.body, {}, overlay)
        overlay[H.OUT_RUN_CREATED_AT] = str(run.created_at)
        underlay: dict[str, str] = {}
        body = msg.body
        if msg.call_type in (CallType.STEP, CallType.FROM_CALLBACK):
            underlay = {name: ", ".join(values) for name, values in run.headers.items()}
        if msg.call_type == CallType.STEP:
            steps = await self.store.steps(run)
            end = next((i for i, s in enumerate(steps) if s.message_id == msg.id), len(steps) - 1)
            body = _json.dumps([s.raw() for s in steps[: end + 1]])
            # Past the size limit the SDK fetches the history itself (GET .../runs/{id}).
            if len(body) > self.settings.message_size_limit and "LazyFetch" in run.features:
                body = b""
        if msg.id == run.init_message_id:
            if UNKNOWN_SDK in run.features:
                overlay[H.OUT_UNKNOWN_SDK] = "true"
            elif TRIGGER_API in run.features:
                self._detect[msg.id] = TRIGGER_API
            elif "WF_DetectTrigger" in run.features:
                self._detect[msg.id] = "WF_DetectTrigger"
        return RunDelivery(body, underlay, overlay)

    def verdict(self, msg: Message, response: Response | None, decision: Decision) -> Decision:
        """A run's first step must be answered by a workflow SDK (it says which protocol it
        speaks), one of version 1 or later when the trigger API started the run; anything
        else fails the run at once."""
        check = self._detect.pop(msg.id, None)
        if check is None or decision.outcome != "delivered" or response is None:
            return decision
        if response.header(H.SDK_VERSION) is None:
            return Decision("failed", NON_WORKFLOW)
        if check == TRIGGER_API and _major(response.header(H.SDK_NAME)) < 1:
            return Decision("failed", OLD_SDK)
        return decision

    async def attempted(
        self, msg: Message, decision: Decision, result: dict[str, Any], now: int
    ) -> None:
        """Keep what the logs show of the attempt: the state of a step's delivery, errors."""
        run = await self.runs.run_of(msg)
        if run is None:
            return
        if msg.call_type == CallType.FAILURE_CALL:
            await self._failure_call_attempted(run, msg, decision, result, now)
            return
        if decision.outcome == "delivered":
            await self.store.set_status(run, msg.id, {"state": "delivered"})
            return
        status = (await self.store.statuses(run)).get(msg.id) or {}
        status.setdefault("errors", []).append(_error(result, decision, now))
        if decision.outcome == "failed":
            status["state"] = "STEP_FAILED"
        elif msg.id in self.engine.cancel_requested:
            status["state"] = "STEP_CANCELED"  # cancelled while in flight: not tried again
        else:
            status["state"] = "STEP_RETRY"
        status["retries"] = msg.retried + (1 if decision.outcome == "retry" else 0)
        if msg.options.retry_delay:
            status["retryDelay"] = msg.options.retry_delay
        await self.store.set_status(run, msg.id, status)

    async def _failure_call_attempted(
        self, run: Run, msg: Message, decision: Decision, result: dict[str, Any], now: int
    ) -> None:
        async with self.runs.locked(run.user, run.run_id):
            fresh = await self.store.get(run.user, run.run_id, run.created_at)
            if fresh is None or fresh.failure is None:
                return
            failure = fresh.failure
            if decision.outcome == "delivered":
                failure["state"] = "CALLBACK_SUCCESS"
            elif decision.outcome == "failed":
                failure["state"] = "CALLBACK_FAIL"
            if decision.outcome != "delivered":
                failure.setdefault("errors", []).append(_error(result, decision, now))
            failure["responseStatus"] = result["status"]
            failure["responseHeaders"] = result.get("header", {})
            failure["responseBody"] = result.get("body", b"").decode("utf-8", "replace")
            await self.store.save(fresh)

    async def failed(self, msg: Message, result: dict[str, Any], now: int) -> list[Message]:
        """A message of a run used up its retries (or was refused for good): the run fails,
        with a dead letter and the failure function's call. A call to a third party does not
        fail the run: its callback carries the final answer to the workflow."""
        if msg.call_type in (CallType.TO_CALLBACK, CallType.FAILURE_CALL):
            return []
        run = await self.runs.run_of(msg)
        if run is None:
            return []
        async with self.runs.locked(run.user, run.run_id):
            fresh = await self.store.get(run.user, run.run_id, run.created_at)
            if fresh is None or fresh.ended:
                return []
            run = fresh
            msg.dlq_id = await self.engine.store.dlq_add(msg, result)
            run.dlq_id = msg.dlq_id
            call = await self.failure_call(run, msg, result, msg.dlq_id, now)
            calls = [call] if call is not None else []
            await self.runs.end(run, RunState.FAILED, now, skip=msg.id)
        return calls

    async def failure_call(
        self, run: Run, msg: Message, result: dict[str, Any], dlq_id: str, now: int
    ) -> Message | None:
        """The failure function's call for ``run``, failed at ``msg``; noted as the run's
        ``failure`` (the caller stores the run and the call). None without a failure callback."""
        config = msg.options.failure_callback or run.options.failure_callback
        if config is None:
            return None
        call = callback_message(
            msg,
            "failure_callback",
            config,
            result,
            dlq_id,
            now,
            {
                "workflowRunId": run.run_id,
                "workflowCreatedAt": run.created_at,
                "sourceBody": _json.b64(await self.runs.initial_payload(run)),
                "url": run.url,
            },
        )
        call.run_id, call.run_created_at = run.run_id, run.created_at
        call.call_type = CallType.FAILURE_CALL
        run.failure = {
            "messageId": call.id,
            "url": call.url,
            "state": "CALLBACK_INPROGRESS",
            "failStatus": result.get("status", 0),
            "failResponse": result.get("body", b"").decode("utf-8", "replace"),
            "failHeaders": result.get("header", {}),
            "dlqId": dlq_id,
        }
        return call

    async def adopt(self, made: list[tuple[Message, CallbackConfig]]) -> list[Message]:
        """Callbacks of a run's messages (a context.call's answer) are messages of the run:
        recorded in it while it runs, dropped once it has ended, and configured by the run's
        trigger where their own headers say nothing."""
        kept: list[Message] = []
        for callback, config in made:
            if callback.run_id is None:
                kept.append(callback)
                continue
            async with self.runs.locked(callback.user, callback.run_id):
                run = await self.store.active(callback.user, callback.run_id)
                if run is None:
                    continue
                callback.run_created_at = run.created_at
                own, trigger = callback.options, run.options
                callback.options = dataclasses.replace(
                    own,
                    retries=own.retries
                    if config["retries"] is not None
                    else _retries(run, self.settings),
                    retry_delay=config["retry_delay"] or trigger.retry_delay,
                    failure_callback=own.failure_callback or trigger.failure_callback,
                    flow=own.flow or trigger.flow,
                )
                step = RunStep.of(callback, callback.call_type or CallType.FROM_CALLBACK)
                await self.store.append(run, [step])
            kept.append(callback)
        return kept


def _major(version: str | None) -> int:
    """``v1.3.2`` -> 1; 0 when the answer did not say."""
    digits = (version or "").strip().lstrip("vV").split(".", 1)[0]
    return int(digits) if digits.isdigit() else 0


def _retries(run: Run, settings: Settings) -> int:
    retries = run.options.retries
    return retries if retries is not None else settings.default_retries


def _error(result: dict[str, Any], decision: Decision, now: int) -> dict[str, Any]:
    return {
        "error": result.get("error") or decision.reason,
        "body": result.get("body", b"").decode("utf-8", "replace"),
        "headers": result.get("header", {}),
        "status": result["status"],
        "time": now,
    }
