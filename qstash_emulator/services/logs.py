"""The message logs of each user, a page at a time (docs/behaviour.md#logs)."""

from __future__ import annotations

from typing import Any

from ..model.filters import Filter
from ..store.core import Store

__all__ = ["Logs"]


class Logs:
    """What ``/v2/logs`` (and ``/v2/events``) read: the state changes of every message."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def page(
        self, user: str, flt: Filter, cursor: str | None, count: int, latest_first: bool
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``count`` rows ``flt`` keeps from ``cursor`` on, and where the next page
        starts (None at the end); a page ends early at a byte cap (docs/behaviour.md#memory)."""
        return await self.store.log_page(
            user, cursor, count, latest_first, lambda row: flt.matches(row, time_key="time")
        )
