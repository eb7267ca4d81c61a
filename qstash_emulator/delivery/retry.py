"""When a failed delivery is tried again (docs/behaviour.md#retries), and why."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .._errors import BadRequest
from ..model.durations import parse_retry_after_ms
from ..model.headers import H
from .transport import Response

__all__ = ["Decision", "Outcome", "decide", "default_backoff_ms"]

# What follows an attempt: done, another attempt later, no more attempts, or none because the
# message was cancelled while the attempt ran.
Outcome = Literal["delivered", "retry", "failed", "cancelled"]

_DAY_MS = 86_400_000


def default_backoff_ms(retry_number: int) -> int:
    """QStash's default: ``min(1 day, e^(2.5 k))`` seconds before retry ``k``.

    The rules: docs/behaviour.md#retries.
    """
    return int(min(86_400.0, math.exp(2.5 * retry_number)) * 1_000)


@dataclass(frozen=True)
class Decision:
    """What happens after an attempt, and the reason a test can assert on."""

    outcome: Outcome
    reason: str
    delay_ms: int | None = None
    delay_source: str | None = None  # "default backoff e^(2.5*k)", "Retry-After", expression


def decide(
    response: Response | None,
    error: str | None,
    retried: int,
    max_retries: int,
    retry_delay: str | None,
    now_ms: int,
) -> Decision:
    """Decide the fate of a message after attempt number ``retried`` (0-based)."""
    if response is not None and 200 <= response.status < 300:
        return Decision("delivered", f"status {response.status}")
    cause = error or f"status {response.status if response else 0}"
    if response is not None and response.status == 489:
        flag = (response.header(H.NON_RETRYABLE) or "").strip().lower()
        if flag == "true":
            return Decision("failed", "status 489 with Upstash-NonRetryable-Error: true")
    if retried >= max_retries:
        return Decision("failed", f"{cause}; no retries left ({retried} of {max_retries} used)")
    if response is not None:
        for name in H.RETRY_AFTER:
            value = response.header(name)
            if value is None:
                continue
            delay = parse_retry_after_ms(value, now_ms)
            if delay is not None and delay <= _DAY_MS:
                return Decision("retry", cause, delay, f"{name}: {value}")
    if retry_delay:
        # Only messages with Upstash-Retry-Delay need the parser: lazy, out of start-up.
        from ..model.expressions import RetryDelayExpression

        try:
            delay = RetryDelayExpression(retry_delay).evaluate(retried)
            return Decision(
                "retry", cause, delay, f"Upstash-Retry-Delay {retry_delay} with retried={retried}"
            )
        except BadRequest:
            pass
    return Decision(
        "retry",
        cause,
        default_backoff_ms(retried + 1),
        f"default backoff min(86400, e^(2.5*{retried + 1}))s",
    )
