"""Many publishes, enqueues or workflow triggers in one call (``/v2/batch``, ``/v2/batch/trigger``).

Each entry is handled like its own publish, enqueue or trigger. A failed entry gets
``{"error": ...}`` in its slot and the others still go. A workflow run's entry is the
exception: the workflow SDKs read only the call's status (400: the run has ended, 412: a plan
limit), so a refused one fails the whole call (docs/workflow.md#runs).

The rules: docs/behaviour.md#publish-responses.
"""

from __future__ import annotations

from typing import Any

from .. import _json
from .._errors import BadRequest, EmulatorError, PlanLimit
from ..model.destination import parse_destination, validate_name
from ..model.headers import H, parse_publish
from ..model.options import PublishOptions
from ..server.config import Settings
from ..workflows import Runs
from .loops import Loops
from .publisher import Publisher, check_size
from .queues import Queues
from .quotas import Quotas
from .url_groups import UrlGroups

__all__ = ["Batches"]

Result = dict[str, Any] | list[dict[str, Any]]


class Batches:
    """Runs a batch's entries through the publisher (or the runs' trigger), one slot each."""

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        quotas: Quotas,
        queues: Queues,
        url_groups: UrlGroups,
        runs: Runs,
        loops: Loops | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.quotas = quotas
        self.queues = queues
        self.url_groups = url_groups
        self.runs = runs
        self.loops = loops

    async def publish(
        self, user: str, ip: str, entries: list[Any], hops: int | None = None
    ) -> list[Result]:
        """``POST /v2/batch``: each entry's publish answer, or its error; ``hops``: how deep
        in a chain of deliveries that publish again the call is (``services.loops``)."""
        # Over the daily quota the whole call is a 429 with RateLimit-* headers, as for publish.
        await self.quotas.check_daily(user, len(entries))
        # A run's entry is checked before anything is published: its refusal fails the call.
        for index, entry in enumerate(entries):
            if _of_a_run(entry):
                await self.read_entry(user, index, entry)
        results: list[Result] = []
        for index, entry in enumerate(entries):
            try:
                results.append(await self._publish_entry(user, ip, index, entry, hops))
            except EmulatorError as exc:
                if _of_a_run(entry):
                    raise
                results.append({"error": exc.message})
        return results

    async def trigger(self, user: str, ip: str, entries: list[Any]) -> list[dict[str, Any]]:
        """``POST /v2/batch/trigger``: each entry started as ``/v2/trigger`` would start it."""
        await self.quotas.check_daily(user, len(entries))
        answers: list[dict[str, Any]] = []
        for index, entry in enumerate(entries):
            try:
                if isinstance(entry, dict) and not isinstance(entry.get("body"), (str, type(None))):
                    entry = {**entry, "body": _json.dumps(entry["body"]).decode()}
                try:
                    url, opts, body = await self.read_entry(user, index, entry)
                except PlanLimit as exc:
                    raise exc.for_workflow() from exc
                answers.append(await self.runs.trigger(user, url, opts, body, ip))
            except EmulatorError as exc:
                answers.append({"error": exc.message})
        return answers

    async def read_entry(
        self, user: str, index: int, entry: Any, hops: int | None = None
    ) -> tuple[str, PublishOptions, bytes]:
        """One entry's destination, checked options (``headers``) and ``body``."""
        if not isinstance(entry, dict):
            raise BadRequest(f"invalid batch[{index}]: expected an object with destination")
        raw_destination = _field(entry, "destination", index, str)
        if not raw_destination:
            raise BadRequest(f"invalid batch[{index}].destination: required")
        destination = parse_destination(raw_destination, "")
        headers = _field(entry, "headers", index, dict) or {}
        items: list[tuple[str, str]] = []
        for name, value in headers.items():
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                raise BadRequest(f"invalid batch[{index}].headers.{name}: expected a string")
            items.extend((name, v) for v in values)
        items = await self.url_groups.with_defaults(user, destination, items)
        opts = parse_publish(items, self.settings)
        if self.loops is not None:
            self.loops.refuse(destination, opts, f"batch[{index}].")
            self.loops.carry(opts, hops)
        body = (_field(entry, "body", index, str) or "").encode()
        check_size(self.settings, body, f"batch[{index}].body", opts)
        return destination, opts, body

    async def _publish_entry(
        self, user: str, ip: str, index: int, entry: Any, hops: int | None
    ) -> Result:
        destination, opts, body = await self.read_entry(user, index, entry, hops)
        queue = _field(entry, "queue", index, str)
        if not queue:
            return await self.publisher.publish(user, destination, opts, body, ip)
        validate_name(queue, f"batch[{index}].queue")
        return await self.queues.enqueue(
            user,
            queue,
            lambda: self.publisher.publish(user, destination, opts, body, ip, queue_name=queue),
        )


def _of_a_run(entry: Any) -> bool:
    headers = entry.get("headers") if isinstance(entry, dict) else None
    return isinstance(headers, dict) and any(
        isinstance(name, str) and name.lower() == H.RUN_ID for name in headers
    )


def _field(entry: dict[str, Any], name: str, index: int, kind: type) -> Any:
    """An entry's field; null counts as absent (the Python SDK sends ``"queue": null``)."""
    value = entry.get(name)
    if value is not None and not isinstance(value, kind):
        raise BadRequest(f"invalid batch[{index}].{name}: expected a {kind.__name__}")
    return value
