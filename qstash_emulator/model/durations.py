"""Every duration and time format QStash accepts, parsed in one place."""

from __future__ import annotations

import argparse
import re
from email.utils import parsedate_to_datetime

from .._errors import BadRequest

__all__ = [
    "duration_arg",
    "duration_ms",
    "parse_duration_ms",
    "parse_go_duration_ms",
    "parse_retry_after_ms",
]

_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}
_DURATION = re.compile(r"(?:(\d+)([dhms]))")
_GO_UNIT_MS = {
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "μs": 1e-3,
    "ms": 1.0,
    "s": 1_000.0,
    "m": 60_000.0,
    "h": 3_600_000.0,
}
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def duration_ms(value: str) -> int | None:
    """A QStash duration (``10s``, ``1d10h30m``; bare digits are seconds) in ms, or None if
    ``value`` is not one."""
    text = value.strip()
    if text.isdigit():
        return int(text) * 1_000
    if not text or _DURATION.sub("", text) != "":
        return None
    return sum(int(n) * _UNIT_MS[unit] for n, unit in _DURATION.findall(text))


def parse_duration_ms(value: str, field: str) -> int:
    """Parse a QStash duration into ms, or answer 400 naming ``field``."""
    ms = duration_ms(value)
    if ms is None:
        raise BadRequest(
            f"invalid {field}: {value!r} is not a duration such as 10s, 5m, 2h, 1d or 1h30m"
        )
    return ms


def duration_arg(raw: str) -> float:
    """A command-line duration (``10s``, ``2m``; bare digits are seconds) in seconds."""
    ms = duration_ms(raw)
    if ms is None:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a duration such as 10s, 5m or 1h30m")
    return ms / 1_000


def parse_go_duration_ms(value: str) -> float | None:
    """Parse a Go duration (``6m5s``, ``1.5h``, ``300ms``) into ms, or None if it is not one."""
    text = value.strip()
    if not text or _GO_DURATION.sub("", text) != "":
        return None
    return sum(float(n) * _GO_UNIT_MS[unit] for n, unit in _GO_DURATION.findall(text))


def parse_retry_after_ms(value: str, now_ms: int) -> int | None:
    """Read a ``Retry-After``-family value: seconds, an HTTP date, or a Go duration.

    Returns the delay in ms from ``now_ms``, or None when the value cannot be read.
    """
    text = value.strip()
    if text.isdigit():
        return int(text) * 1_000
    go = parse_go_duration_ms(text)
    if go is not None:
        return int(go)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0, int(when.timestamp() * 1_000) - now_ms)
