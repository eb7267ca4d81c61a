"""The filters shared by logs, the DLQ and bulk cancel, from a query string or a JSON body."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from .._errors import BadRequest
from .._models import State
from ._query import multi

__all__ = [
    "FILTER_NAMES",
    "Filter",
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
# Every query name filter_from_query reads; host and path only where a route takes them.
FILTER_NAMES = (*_FIELDS, "state", "responseStatus", "fromDate", "toDate")
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


@dataclass
class Filter:
    """AND across fields, OR within one field's values."""

    values: dict[str, set[str]] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    states: set[str] = field(default_factory=set)
    statuses: set[int] = field(default_factory=set)
    from_ms: int | None = None
    to_ms: int | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.values
            or self.hosts
            or self.paths
            or self.states
            or self.statuses
            or self.from_ms is not None
            or self.to_ms is not None
        )

    def matches(self, view: Mapping[str, Any], time_key: str = "createdAt") -> bool:
        for key, wanted in self.values.items():
            actual = view.get(key)
            if isinstance(actual, list):
                if not wanted.intersection(actual):
                    return False
            elif actual is None or str(actual) not in wanted:
                return False
        if self.hosts or self.paths:
            parts = urlsplit(str(view.get("url", "")))
            if self.hosts and parts.hostname not in self.hosts:
                return False
            if self.paths and parts.path not in self.paths:
                return False
        if self.states and view.get("state") not in self.states:
            return False
        if self.statuses and view.get("responseStatus") not in self.statuses:
            return False
        when = view.get(time_key)
        if self.from_ms is not None and (when is None or when < self.from_ms):
            return False
        return not (self.to_ms is not None and (when is None or when > self.to_ms))


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


def filter_from_query(request: Request) -> Filter:
    """The filters of the query; a route that takes no host or path refuses them beforehand."""
    flt = Filter()
    for name, key in _FIELDS.items():
        values = multi(request, name)
        if values:
            flt.values.setdefault(key, set()).update(values)
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
    """The legacy JSON-body style of bulk cancel and DLQ delete."""
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
