"""Plan limits (docs/behaviour.md#quotas): 412 for resource counts, 429 for the daily message quota.

Every quota check lives here so the numbers come from one table (``server.config.QUOTAS``) and the
errors always carry the headers the official SDKs read to pick their exception class:
``RateLimit-*`` means the daily quota (``DailyMessageLimitExceededError``), ``Burst-RateLimit-*``
a per-second burst (``RateLimitExceededError``).
"""

from __future__ import annotations

from .._errors import QuotaExceeded, RateLimited
from ..delivery.clock import Clock
from ..model.options import PublishOptions
from ..server.config import Quota, Settings
from ..store.core import Store

__all__ = [
    "Quotas",
    "burst_limit_error",
    "daily_limit_error",
    "require_parallelism",
    "require_room",
]

_DAY_MS = 86_400_000


def daily_limit_error(limit: int, remaining: int, reset_s: int) -> RateLimited:
    """The 429 for an exhausted daily message quota, with its ``RateLimit-*`` headers."""
    return RateLimited(
        f"daily message limit exceeded: the plan allows {limit} messages per day; "
        f"the quota resets at {reset_s} (Unix seconds)",
        {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset_s),
        },
    )


def burst_limit_error(limit: int, remaining: int = 0, reset_s: int = 0) -> RateLimited:
    """The 429 for too many management requests in one second (``Burst-RateLimit-*``)."""
    return RateLimited(
        f"burst rate limit exceeded: at most {limit} requests per second",
        {
            "Burst-RateLimit-Limit": str(limit),
            "Burst-RateLimit-Remaining": str(remaining),
            "Burst-RateLimit-Reset": str(reset_s),
        },
    )


def require_room(what: str, used: int, limit: int, plan: str, adding: int = 1) -> None:
    """412 when ``used + adding`` would pass the plan's ``limit`` of ``what`` (e.g. schedules)."""
    if used + adding > limit:
        raise QuotaExceeded(
            f"{what} limit exceeded: the {plan} plan allows at most {limit} {what}; {used} exist"
        )


def require_parallelism(field: str, value: int | None, limits: Quota) -> None:
    """412 when a flow-control parallelism is above the plan's maximum."""
    if value is not None and value > limits.max_parallelism:
        raise QuotaExceeded(
            f"invalid {field}: parallelism {value} exceeds the {limits.name} plan's maximum "
            f"of {limits.max_parallelism}"
        )


class Quotas:
    """Counts messages per user and UTC day (on the emulator's clock) and enforces plan limits."""

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    @property
    def limits(self) -> Quota:
        return self.settings.limits

    def _day(self) -> tuple[str, int]:
        day = self.clock.now_ms() // _DAY_MS
        return str(day), (day + 1) * _DAY_MS // 1_000

    async def daily_used(self, user: str) -> int:
        day, _ = self._day()
        return await self.store.quotas.used(user, day)

    async def check_daily(self, user: str, count: int) -> None:
        """429 if ``count`` more messages would pass today's quota; counts nothing."""
        limit = self.limits.messages_per_day
        if limit is None:
            return
        used = await self.daily_used(user)
        if used + count > limit:
            _, reset = self._day()
            raise daily_limit_error(limit, max(0, limit - used), reset)

    async def consume_daily(self, user: str, count: int) -> None:
        """Count ``count`` messages against today's quota, or refuse them all with a 429."""
        limit = self.limits.messages_per_day
        if limit is None or count <= 0:
            return
        day, reset = self._day()
        used = await self.store.quotas.add(user, day, count)
        if used > limit:
            await self.store.quotas.take_back(user, day, count)
            raise daily_limit_error(limit, max(0, limit - (used - count)), reset)

    async def check_publish(self, user: str, opts: PublishOptions, count: int) -> None:
        """The publisher's check before storing ``count`` messages built from ``opts``."""
        if opts.flow is not None:
            require_parallelism("Upstash-Flow-Control-Value", opts.flow["parallelism"], self.limits)
        await self.consume_daily(user, count)
