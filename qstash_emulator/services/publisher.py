"""Turning an accepted publish into stored messages: one per URL, or one per group endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .._errors import BadRequest, NotFound, PlanLimit
from ..delivery.clock import Clock
from ..delivery.engine import Engine, make_row
from ..model.destination import is_url, refuse_private
from ..model.headers import parse_publish
from ..model.message import Message, State, new_id
from ..model.options import PublishOptions
from ..server.config import Settings
from ..store.core import Store
from ..store.group_commit import Fill

__all__ = ["Admission", "Endpoint", "Publisher", "RunIntake", "check_size"]


@dataclass(frozen=True)
class Endpoint:
    """One destination of a URL group."""

    url: str
    name: str | None = None


class Admission(Protocol):
    """A workflow run's answer to one of its messages, while the run is held for it."""

    duplicate: str | None  # the id of the message that started the run, if it is running
    opts: PublishOptions  # the message's options, with what the run adds
    body: bytes

    def record(self, msg: Message) -> Fill:
        """The writes that start the run with ``msg`` or record it in the run."""
        ...


class RunIntake(Protocol):
    """Upstash Workflow's check of a message that carries a run id (``workflows.Runs``)."""

    def admit(
        self,
        user: str,
        url: str,
        opts: PublishOptions,
        body: bytes,
        caller_ip: str,
        now: int,
    ) -> contextlib.AbstractAsyncContextManager[Admission]: ...


GroupResolver = Callable[[str, str], Awaitable[tuple[list[Endpoint], dict[str, list[str]]] | None]]
Check = Callable[[str, PublishOptions, int], Awaitable[None]]
Hook = Callable[[list[Message]], Awaitable[None]]


class Publisher:
    """Creates messages for publish, enqueue, batch, schedules and DLQ retries."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock,
        engine: Engine,
        *,
        resolve_group: GroupResolver | None = None,
        checks: Iterable[Check] = (),
        accepting: Iterable[Hook] = (),
        stored: Iterable[Hook] = (),
        queue_intake: Hook | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.engine = engine
        # URL groups plug in here: (user, name) -> (endpoints, default headers) or None.
        self.resolve_group = resolve_group
        # Refuse a publish before anything is stored (plan quotas): (user, options, count).
        self.checks = list(checks)
        # Hear of new messages just before they are stored (flow-control keys).
        self.accepting = list(accepting)
        # Hear of new messages once stored, before the publish is answered (flow control).
        self.stored = list(stored)
        # Queues take their new messages, stored off the due list, and decide when each is due.
        self.queue_intake = queue_intake
        # Upstash Workflow: a message with a run id starts or joins its run (``attach``: the
        # runs publish through this publisher, so they are made after it).
        self.runs: RunIntake | None = None

    def attach(self, *, runs: RunIntake) -> None:
        """Plug in Upstash Workflow, which is built on this publisher."""
        self.runs = runs

    async def publish_headers(
        self, user: str, destination: str, items: list[tuple[str, str]], body: bytes, ip: str
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Publish as if a client had sent these headers (messages the server makes)."""
        opts = parse_publish(items, self.settings)
        return await self.publish(user, destination, opts, body, ip)

    async def publish(
        self,
        user: str,
        destination: str,
        opts: PublishOptions,
        body: bytes,
        caller_ip: str,
        *,
        queue_name: str | None = None,
        schedule_id: str | None = None,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Accept one publish; the response body QStash gives for it."""
        if is_url(destination):
            return (
                await self._accept(
                    user,
                    [Endpoint(destination)],
                    None,
                    opts,
                    body,
                    caller_ip,
                    queue_name,
                    schedule_id,
                )
            )[0]
        group = await self.resolve_group(user, destination) if self.resolve_group else None
        if group is None:
            raise NotFound(f"url group {destination!r} not found")
        endpoints, defaults = group
        merged = opts
        if defaults:
            merged = PublishOptions(**{**opts.__dict__, "header": {**defaults, **opts.header}})
        return await self._accept(
            user, endpoints, destination, merged, body, caller_ip, queue_name, schedule_id
        )

    async def _accept(
        self,
        user: str,
        endpoints: list[Endpoint],
        url_group: str | None,
        opts: PublishOptions,
        body: bytes,
        caller_ip: str,
        queue_name: str | None,
        schedule_id: str | None,
    ) -> list[dict[str, Any]]:
        settings = self.settings
        await self.check(user, opts, [e.url for e in endpoints], len(endpoints))
        now = self.clock.now_ms()
        if opts.workflow is not None and self.runs is not None:
            if url_group is not None:
                raise BadRequest(
                    "invalid destination: a workflow message goes to a URL, not a URL group"
                )
            return [await self._accept_run(user, endpoints[0], opts, body, caller_ip, now)]
        results: list[dict[str, Any]] = []
        fresh: list[Message] = []
        for endpoint in endpoints:
            message_id = new_id("msg_")
            dedup = opts.dedup_key(endpoint.url, body)
            if dedup is not None:
                scoped = dedup if url_group is None else f"{dedup}|{endpoint.url}"
                earlier = await self.store.claim_dedup(
                    user, scoped, message_id, now, int(settings.dedup_window_s * 1_000)
                )
                if earlier is not None:
                    results.append(
                        {"messageId": earlier, "url": endpoint.url, "deduplicated": True}
                    )
                    continue
            fresh.append(
                self._message(
                    message_id,
                    user,
                    endpoint,
                    url_group,
                    opts,
                    body,
                    caller_ip,
                    now,
                    queue_name,
                    schedule_id,
                    dedup,
                )
            )
            results.append({"messageId": message_id, "url": endpoint.url})
        if fresh:
            await self.add(fresh, now)
        return results

    async def _accept_run(
        self,
        user: str,
        endpoint: Endpoint,
        opts: PublishOptions,
        body: bytes,
        caller_ip: str,
        now: int,
    ) -> dict[str, Any]:
        """A message of an Upstash Workflow run: it starts the run or is recorded in it."""
        assert self.runs is not None
        async with self.runs.admit(user, endpoint.url, opts, body, caller_ip, now) as admitted:
            if admitted.duplicate is not None:
                return {"messageId": admitted.duplicate, "url": endpoint.url, "deduplicated": True}
            msg = self._message(
                new_id("msg_"),
                user,
                endpoint,
                None,
                admitted.opts,
                admitted.body,
                caller_ip,
                now,
                None,
                None,
                None,
            )
            await self.add([msg], now, admitted.record(msg))
        return {"messageId": msg.id, "url": endpoint.url}

    def _message(
        self,
        message_id: str,
        user: str,
        endpoint: Endpoint,
        url_group: str | None,
        opts: PublishOptions,
        body: bytes,
        caller_ip: str,
        now: int,
        queue_name: str | None,
        schedule_id: str | None,
        dedup: str | None,
    ) -> Message:
        due = opts.due(now)
        run = opts.workflow
        return Message(
            id=message_id,
            user=user,
            url=endpoint.url,
            created_at=now,
            not_before=due,
            options=opts.for_message(self.settings.default_retries),
            due=due,
            body=body,
            dedup_key=dedup,
            topic_name=url_group,
            endpoint_name=endpoint.name,
            queue_name=queue_name,
            schedule_id=schedule_id,
            caller_ip=caller_ip,
            run_id=run["run_id"] if run else None,
            call_type=run["call_type"] if run else None,
        )

    async def check(self, user: str, opts: PublishOptions, urls: Iterable[str], count: int) -> None:
        """Refuse what no new message may be before anything is stored: a destination or
        callback on a private network in strict mode, more than the plan allows."""
        if self.settings.strict_destinations:
            for url in urls:
                await refuse_private(url, "destination")
            for config in (opts.callback, opts.failure_callback):
                if config:
                    await refuse_private(config["url"], "Upstash-Callback")
        for check in self.checks:
            await check(user, opts, count)

    async def add(self, fresh: list[Message], now: int, also: Fill | None = None) -> None:
        """Store new messages (checked already), logged CREATED, with ``also``'s writes;
        a queue's messages go to their queue, the others are due at their time."""
        for hook in self.accepting:
            await hook(fresh)
        queued = [m for m in fresh if m.queue_name is not None] if self.queue_intake else []
        for msg in queued:
            msg.due = -1
        await self.store.add(fresh, [make_row(m, State.CREATED, now) for m in fresh], also)
        if queued and self.queue_intake is not None:
            await self.queue_intake(queued)
        for hook in self.stored:
            await hook(fresh)
        self.engine.notify()


def check_size(
    settings: Settings, body: bytes, field: str = "body", opts: PublishOptions | None = None
) -> None:
    """The body, and the headers the message carries with it, fit the message size (a 412
    for a workflow run's message)."""
    limit = settings.message_size_limit
    carried = sum(
        len(n) + sum(len(v) for v in vs) for n, vs in (opts.header if opts else {}).items()
    )
    error = None
    if len(body) > limit:
        error = PlanLimit(
            f"invalid {field}: {len(body)} bytes exceeds the maximum message size of {limit} bytes"
        )
    elif len(body) + carried > limit:
        where = field.removesuffix("body") + "headers"
        error = PlanLimit(
            f"invalid {where}: {carried} bytes of forwarded headers with the {len(body)}-byte "
            f"body exceed the maximum message size of {limit} bytes"
        )
    if error is not None:
        raise error.for_workflow() if opts is not None and opts.workflow else error
