"""Faults on the API side: make the emulator answer 429, 5xx or drop the connection on purpose.

Publisher code can then be tested against what production does on a bad day. Each fault
matches by user, method and path prefix and fires a set number of times. ``/_emulator/``
(the inspection and control API) is never faulted, so a test can always clear its faults.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .. import _json
from ..model.sendable import on_the_wire, unsendable
from .quotas import burst_limit_error, daily_limit_error

__all__ = ["FAULT_KINDS", "Fault", "FaultKind", "Faults"]

# An error status, a plan's daily or burst limit (429 with the SDKs' headers), or a drop.
FaultKind = Literal["error", "daily", "burst", "drop"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)


@dataclass
class Fault:
    """One programmed failure. ``kind``: "error" (``status``), "daily", "burst" or "drop"."""

    kind: FaultKind = "error"
    status: int = 500
    path: str = "/"
    method: str | None = None
    user: str | None = None
    times: int | None = 1
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"invalid kind {self.kind!r}: expected one of {', '.join(FAULT_KINDS)}"
            )
        if self.kind in ("daily", "burst"):
            self.status = 429
        elif self.kind == "error" and not 400 <= self.status <= 599:
            raise ValueError(f"invalid status {self.status}: expected 400-599")
        if self.times is not None and self.times < 1:
            raise ValueError(f"invalid times {self.times!r}: expected at least 1, or None")
        self.method = self.method.upper() if self.method else None
        for name, value in self.headers.items():
            # Sent on the answer: one the HTTP server cannot write would crash every match.
            if (reason := unsendable(name, value)) is not None:
                raise ValueError(f"invalid headers: {reason}")
            if not on_the_wire(name):
                raise ValueError(f"invalid headers: {name!r} is set by the server")

    @property
    def left(self) -> int | None:
        """How many more requests it fails; None means every one until cleared."""
        return None if self.times is None else self.times - self.hits

    def matches(self, user: str | None, method: str, path: str) -> bool:
        return (
            (self.user is None or self.user == user)
            and (self.method is None or self.method == method)
            and path.startswith(self.path)
        )

    def describe(self) -> str:
        what = "drop the connection" if self.kind == "drop" else f"answer {self.status}"
        if self.kind in ("daily", "burst"):
            what += f" ({self.kind} limit)"
        scope = f"{self.method or 'any method'} {self.path}*"
        who = f" for user {self.user}" if self.user else ""
        left = "until cleared" if self.left is None else f"{self.left} more time(s)"
        return f"{what} to {scope}{who}, {left}"

    def response(self) -> tuple[int, dict[str, str], bytes]:
        if self.kind in ("daily", "burst"):
            # The SDKs choose their exception from these headers (docs/behaviour.md#quotas).
            if self.kind == "daily":
                error = daily_limit_error(1_000, 0, int(time.time()) + 86_400)
            else:
                error = burst_limit_error(100, 0, int(time.time()) + 1)
            headers = {**error.headers, **self.headers}
            return 429, headers, _json.dumps({"error": self.body or error.message})
        message = self.body or f"injected fault: status {self.status}"
        return self.status, self.headers, _json.dumps({"error": message})


class Faults:
    """The faults programmed on one emulator; safe to change from any thread."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault | None = None, /, **options: Any) -> Fault:
        """Program a fault (a ``Fault`` or its fields as keywords); the first match fires."""
        fault = fault or Fault(**options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self, user: str | None = None) -> None:
        """Forget every fault, or only those programmed for ``user``."""
        with self._lock:
            self._faults = [f for f in self._faults if user is not None and f.user != user]

    def reset(self) -> None:
        self.clear()

    def forget_user(self, user: str) -> None:
        self.clear(user)

    def remaining(self, user: str | None = None) -> list[Fault]:
        """Faults that have not fired all their times (for ``user``, or all)."""
        with self._lock:
            return [
                f
                for f in self._faults
                if (user is None or f.user == user) and (f.left is None or f.left > 0)
            ]

    def __iter__(self) -> Iterator[Fault]:
        with self._lock:
            return iter(list(self._faults))

    def __bool__(self) -> bool:
        return bool(self._faults)

    def take(self, user: str | None, method: str, path: str) -> Fault | None:
        """The fault this request meets, counting it as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.left == 0 or not fault.matches(user, method, path):
                    continue
                fault.hits += 1
                if fault.left == 0:
                    self._faults.remove(fault)
                return fault
        return None
