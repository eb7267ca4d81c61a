"""Matching deliveries against criteria, the list that filters by them, and failure messages
that show the near misses."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, SupportsIndex, overload

from ._deliveries import Delivery

__all__ = ["FIELDS", "Criteria", "Deliveries", "no_match_message"]

FIELDS = (
    "url",
    "path",
    "method",
    "body",
    "json",
    "headers",
    "status",
    "outcome",
    "message_id",
    "kind",
    "retried",
    "where",
)

_NO_JSON = object()


class Criteria:
    """What a test expects of a delivery; each mismatch is reported field by field."""

    def __init__(self, criteria: Mapping[str, Any]) -> None:
        unknown = sorted(set(criteria) - set(FIELDS))
        if unknown:
            raise TypeError(
                f"unknown delivery criteria: {', '.join(unknown)}; expected any of "
                f"{', '.join(FIELDS)}"
            )
        self.items = dict(criteria)

    def __bool__(self) -> bool:
        return bool(self.items)

    def describe(self) -> str:
        if not self.items:
            return "any delivery"
        parts = []
        for name, value in self.items.items():
            if name == "where":
                parts.append(f"where={getattr(value, '__name__', 'predicate')}")
            elif isinstance(value, re.Pattern):
                parts.append(f"{name}=re.compile({value.pattern!r})")
            else:
                parts.append(f"{name}={value!r}")
        return ", ".join(parts)

    def matches(self, delivery: Delivery) -> bool:
        return not self.differences(delivery)

    def differences(self, delivery: Delivery) -> list[tuple[str, Any, Any]]:
        """(field, expected, actual) for each criterion the delivery fails."""
        out: list[tuple[str, Any, Any]] = []
        for name, expected in self.items.items():
            check = _CHECKS[name]
            ok, actual = check(delivery, expected)
            if not ok:
                out.append((name, expected, actual))
        return out


def _url(delivery: Delivery, expected: Any) -> tuple[bool, Any]:
    candidates = (delivery.url, delivery.destination_url)
    if isinstance(expected, re.Pattern):
        return any(expected.search(c) for c in candidates), delivery.url
    return expected in candidates, delivery.url


def _equal(getter: Callable[[Delivery], Any]) -> Callable[[Delivery, Any], tuple[bool, Any]]:
    def check(delivery: Delivery, expected: Any) -> tuple[bool, Any]:
        actual = getter(delivery)
        if isinstance(expected, re.Pattern) and isinstance(actual, str):
            return expected.search(actual) is not None, actual
        return actual == expected, actual

    return check


def _method(delivery: Delivery, expected: Any) -> tuple[bool, Any]:
    return delivery.method == str(expected).upper(), delivery.method


def _body(delivery: Delivery, expected: Any) -> tuple[bool, Any]:
    if isinstance(expected, str):
        return delivery.text == expected, delivery.text
    return delivery.body == expected, delivery.body


def _json(delivery: Delivery, expected: Any) -> tuple[bool, Any]:
    try:
        actual = delivery.json()
    except ValueError:
        return False, f"(not JSON) {delivery.text[:200]!r}"
    return actual == expected, actual


def _headers(delivery: Delivery, expected: Any) -> tuple[bool, Any]:
    wrong = header_subset(expected, delivery)
    return not wrong, wrong


def _where(delivery: Delivery, expected: Any) -> tuple[bool, Any]:
    return bool(expected(delivery)), "predicate returned False"


_CHECKS: dict[str, Callable[[Delivery, Any], tuple[bool, Any]]] = {
    "url": _url,
    "path": _equal(lambda d: d.path),
    "method": _method,
    "body": _body,
    "json": _json,
    "headers": _headers,
    "status": _equal(lambda d: d.status),
    "outcome": _equal(lambda d: d.outcome),
    "message_id": _equal(lambda d: d.message_id),
    "kind": _equal(lambda d: d.kind),
    "retried": _equal(lambda d: d.retried),
    "where": _where,
}


def no_match_message(
    headline: str, criteria: Criteria, deliveries: Iterable[Delivery], limit: int = 5
) -> str:
    """The failure text: what was expected, then the closest deliveries and how each differs."""
    seen = list(deliveries)
    lines = [f"{headline}: {criteria.describe()}"]
    if not seen:
        lines.append("No delivery was attempted in this test.")
        return "\n".join(lines)
    ranked = sorted(enumerate(seen), key=lambda p: (len(criteria.differences(p[1])), p[0]))
    lines.append(f"{len(seen)} delivery attempt(s) were made; the closest:")
    for _, delivery in ranked[:limit]:
        lines.append(f"  {delivery.describe()}")
        for name, expected, actual in criteria.differences(delivery):
            if name == "headers":
                for header, value in actual.items():
                    lines.append(
                        f"      header {header}: expected {expected[header]!r}, got {value!r}"
                    )
            elif name == "status" and delivery.status is not None and delivery.status < 400:
                # An error answer's body is on the line above; show a success's here.
                lines.append(f"      status: expected {expected!r}, got {delivery.result()}")
            else:
                lines.append(f"      {name}: expected {expected!r}, got {actual!r}")
    if len(seen) > limit:
        lines.append(f"  ... and {len(seen) - limit} more")
    return "\n".join(lines)


def count_message(criteria: Criteria, expected: int, matched: list[Delivery], what: str) -> str:
    return (
        f"expected {expected} {what} matching {criteria.describe()}, got {len(matched)}:\n"
        + describe_all(matched)
    )


class Deliveries(list[Delivery]):
    """Delivery records in the order the attempts finished, with respx-style helpers."""

    @property
    def called(self) -> bool:
        return bool(self)

    @property
    def call_count(self) -> int:
        return len(self)

    @property
    def last(self) -> Delivery:
        if not self:
            raise IndexError("no delivery was attempted")
        return self[-1]

    def filter(self, **criteria: Any) -> Deliveries:
        """The records matching every criterion (see ``assert_delivered`` for the names)."""
        wanted = Criteria(criteria)
        return Deliveries(d for d in self if wanted.matches(d))

    def of(self, message_id: str) -> Deliveries:
        """Every attempt of one message, first to last."""
        return Deliveries(d for d in self if d.message_id == message_id)

    def by_message(self) -> dict[str, Deliveries]:
        grouped: dict[str, Deliveries] = {}
        for delivery in self:
            grouped.setdefault(delivery.message_id, Deliveries()).append(delivery)
        return grouped

    @overload
    def __getitem__(self, index: SupportsIndex) -> Delivery: ...

    @overload
    def __getitem__(self, index: slice) -> Deliveries: ...

    def __getitem__(self, index: SupportsIndex | slice) -> Delivery | Deliveries:
        if isinstance(index, slice):
            return Deliveries(super().__getitem__(index))
        return super().__getitem__(index)


def describe_all(deliveries: Iterable[Delivery], indent: str = "  ") -> str:
    return "\n".join(indent + d.describe() for d in deliveries) or indent + "(none)"


def header_subset(expected: Mapping[str, str], delivery: Delivery) -> dict[str, str | None]:
    """The expected headers whose value differs, mapped to what was actually sent."""
    return {
        name: delivery.header(name)
        for name, value in expected.items()
        if delivery.header(name) != value
    }
