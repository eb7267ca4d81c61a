"""Which messages, log rows or dead letters a filter keeps: AND across fields, OR within one
field's values. ``api._filters`` reads one from a query string or a JSON body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Filter"]


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
