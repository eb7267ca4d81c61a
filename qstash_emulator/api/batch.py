"""``POST /v2/batch``: many publishes and enqueues in one call.

Each entry is handled like its own publish or enqueue. A failed entry gets ``{"error": ...}``
in its slot and the others still go; only a body that is not a JSON array, or a refused entry
of a workflow run (docs/workflow.md#runs), fails the call.

The rules: docs/behaviour.md#publish-responses.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._destination import parse_destination, validate_name
from .._errors import BadRequest, EmulatorError
from .._headers import H, PublishOptions, parse_publish
from .._runtime import Runtime
from ._common import caller, caller_ip, json, json_body, runtime
from .publish import check_size

__all__ = ["read_entry", "routes"]

Result = dict[str, Any] | list[dict[str, Any]]


async def batch(request: Request) -> Response:
    who = caller(request, write=True)
    rt = runtime(request)
    entries = await json_body(request)
    if not isinstance(entries, list):
        raise BadRequest(
            "invalid body: expected a JSON array of {destination, headers, body, queue}"
        )
    # Over the daily quota the whole call is a 429 with RateLimit-* headers, as for publish.
    await rt.quotas.check_daily(who.user_id, len(entries))
    ip = caller_ip(request)
    # A workflow run's entry that is refused fails the whole call with its status, checked
    # before anything is published: the workflow SDKs read it (400: the run has ended, 412: a
    # plan limit), and never look into the answer's slots.
    for index, entry in enumerate(entries):
        if _of_a_run(entry):
            await read_entry(rt, who.user_id, index, entry)
    results: list[Result | dict[str, str]] = []
    for index, entry in enumerate(entries):
        try:
            results.append(await _publish_entry(rt, who.user_id, ip, index, entry))
        except EmulatorError as exc:
            if _of_a_run(entry):
                raise
            results.append({"error": exc.message})
    return json(results)


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


async def read_entry(
    rt: Runtime, user: str, index: int, entry: Any
) -> tuple[str, PublishOptions, bytes]:
    """One batch entry's destination, checked options (``headers``) and ``body``."""
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
    items = await rt.url_groups.with_defaults(user, destination, items)
    opts = parse_publish(items, rt.settings)
    body = (_field(entry, "body", index, str) or "").encode()
    check_size(rt.settings, body, f"batch[{index}].body", opts)
    return destination, opts, body


async def _publish_entry(rt: Runtime, user: str, ip: str, index: int, entry: Any) -> Result:
    destination, opts, body = await read_entry(rt, user, index, entry)
    queue = _field(entry, "queue", index, str)
    if queue:
        validate_name(queue, f"batch[{index}].queue")
        await rt.queues.check_enqueue(user, queue)
    return await rt.publisher.publish(user, destination, opts, body, ip, queue_name=queue or None)


routes = [Route("/v2/batch", batch, methods=["POST"])]
