"""The filters of logs, the DLQ and bulk cancel (``model.filters.Filter``), read from a query string
or a JSON body."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from .._errors import BadRequest
from ..model.filters import Filter
from ..model.message import State
from ._query import multi

__all__ = [
    "BODY_FILTER_NAMES",
    "DESTINATION_NAMES",
    "FILTER_NAMES",
    "PAGE_NAMES",
    "filter_from_body",
    "filter_from_query",
    "parse_cursor",
    "parse_order",
]

# query name -> key in the JSON view; both spellings of callerIp (docs/behaviour.md#messages)
_FIELDS = {
    "url": "url",
    "topicName": "topicName",
    "queueName": "queueName",
    "scheduleId": "scheduleId",
    "label": "labels",
    "callerIp": "callerIP",
    "callerIP": "callerIP",
    "flowControlKey": "flowControlKey",
    "messageId": "messageId",
    "messageIds": "messageId",
    "endpointName": "endpointName",
}
# The query names filter_from_query reads; with destination=True, DESTINATION_NAMES too.
FILTER_NAMES = (*_FIELDS, "state", "responseStatus", "fromDate", "toDate")
DESTINATION_NAMES = ("host", "path")
# The JSON body fields filter_from_body reads.
BODY_FILTER_NAMES = (*_FIELDS, "fromDate", "toDate")
# A listing's page: parse_cursor, the handler's own count (its bounds differ), parse_order.
PAGE_NAMES = ("cursor", "count", "order")
_IN_PROGRESS = {State.ACTIVE, State.RETRY, State.ERROR}
_STATES = {
    State.CREATED,
    State.ACTIVE,
    State.RETRY,
    State.ERROR,
    State.IN_PROGRESS,
    State.DELIVERED,
    State.FAILED,
    State.CANCEL_REQUESTED,
    State.CANCELED,
    "CANCELLED",
}


def _date(raw: str | None, name: str) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(str(raw))
    except ValueError as exc:
        raise BadRequest(f"invalid {name}: {raw!r} is not a Unix time in milliseconds") from exc


def _states(values: list[str]) -> set[str]:
    states: set[str] = set()
    for value in values:
        upper = value.upper()
        if upper not in _STATES:
            raise BadRequest(f"invalid state: {value!r}")
        if upper == State.IN_PROGRESS:
            states |= _IN_PROGRESS
        elif upper in {"CANCELLED", State.CANCELED}:
            states.add(State.CANCELED)
        else:
            states.add(upper)
    return states


def filter_from_query(request: Request, *, destination: bool = False) -> Filter:
    """The filters of the query (``FILTER_NAMES``), and with ``destination`` the host and
    path of the destination (``DESTINATION_NAMES``)."""
    flt = Filter()
    for name, key in _FIELDS.items():
        values = multi(request, name)
        if values:
            flt.values.setdefault(key, set()).update(values)
    if destination:
        flt.hosts, flt.paths = set(multi(request, "host")), set(multi(request, "path"))
    flt.states = _states(multi(request, "state"))
    for raw in multi(request, "responseStatus"):
        if not raw.isdigit():
            raise BadRequest(f"invalid responseStatus: {raw!r}")
        flt.statuses.add(int(raw))
    flt.from_ms = _date(request.query_params.get("fromDate"), "fromDate")
    flt.to_ms = _date(request.query_params.get("toDate"), "toDate")
    return flt


def filter_from_body(body: Any) -> Filter:
    """The legacy JSON-body style of bulk cancel and DLQ delete (``BODY_FILTER_NAMES``)."""
    if not isinstance(body, dict):
        raise BadRequest("invalid body: expected a JSON object")
    flt = Filter()
    for name, key in _FIELDS.items():
        raw = body.get(name)
        if raw in (None, "", []):
            continue
        values = raw if isinstance(raw, list) else [raw]
        if not all(isinstance(v, str) for v in values):
            raise BadRequest(f"invalid {name}: expected a string or a list of strings")
        flt.values.setdefault(key, set()).update(values)
    flt.from_ms = _date(body.get("fromDate"), "fromDate")
    flt.to_ms = _date(body.get("toDate"), "toDate")
    return flt


def parse_order(request: Request) -> bool:
    """True for newest first (the default)."""
    order = request.query_params.get("order", "latestFirst")
    if order not in {"latestFirst", "earliestFirst"}:
        raise BadRequest(f"invalid order: {order!r}, want latestFirst or earliestFirst")
    return order == "latestFirst"


_CURSOR = re.compile(r"^\d{1,19}(-\d{1,19})?(\.\d{1,4})?$")


def parse_cursor(request: Request) -> str | None:
    """A page cursor is a stream id we handed out (``1725323658779-0``, ``...-0.3`` inside
    an entry of several log rows); anything else is 400."""
    cursor = request.query_params.get("cursor") or None
    if cursor is not None and not _CURSOR.match(cursor):
        raise BadRequest(f"invalid cursor: {cursor!r} is not a cursor this server returned")
    return cursor
