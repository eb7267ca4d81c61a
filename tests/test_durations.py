from __future__ import annotations

import pytest

from qstash_emulator._errors import BadRequest
from qstash_emulator.model.durations import (
    parse_duration_ms,
    parse_go_duration_ms,
    parse_retry_after_ms,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("10s", 10_000),
        ("5m", 300_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("1d10h30m", 124_200_000),
        ("1h30m3s", 5_403_000),
        ("0s", 0),
        ("30", 30_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text, "Upstash-Delay") == ms


@pytest.mark.parametrize("text", ["", "s", "-5s", "1.5h", "10 s", "1w", "abc", "5ms"])
def test_bad_durations_name_the_field(text: str) -> None:
    with pytest.raises(BadRequest, match="Upstash-Delay"):
        parse_duration_ms(text, "Upstash-Delay")


def test_go_durations() -> None:
    assert parse_go_duration_ms("6m5s") == 365_000
    assert parse_go_duration_ms("1.5h") == 5_400_000
    assert parse_go_duration_ms("300ms") == 300
    assert parse_go_duration_ms("2µs") == 0.002
    assert parse_go_duration_ms("soon") is None


def test_retry_after_forms() -> None:
    now = 1_719_490_584_000  # Thu, 27 Jun 2024 12:16:24 GMT
    assert parse_retry_after_ms("0", now) == 0
    assert parse_retry_after_ms("120", now) == 120_000
    assert parse_retry_after_ms("6m5s", now) == 365_000
    assert parse_retry_after_ms("Thu, 27 Jun 2024 12:17:24 GMT", now) == 60_000
    assert parse_retry_after_ms("Thu, 27 Jun 2024 12:00:00 GMT", now) == 0
    assert parse_retry_after_ms("whenever", now) is None
