"""Dead letters: the messages that failed for good, listed, read, deleted and published again
(docs/behaviour.md#dead-letters)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from .._errors import NotFound
from ..delivery.clock import Clock
from ..model.filters import Filter
from ..model.headers import parse_publish
from ..model.message import DeadLetter, State, new_id
from ..model.options import named
from ..model.views import dlq_view
from ..server.config import Settings
from ..store.core import Store
from .publisher import Publisher

__all__ = ["DeadLetters", "view"]


def view(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter in the ``/v2/dlq`` shape."""
    return dlq_view(letter.message, letter.dlq_id, letter.response)


class DeadLetters:
    """Each user's dead-letter queue; a retry is a new publish, checked as one."""

    def __init__(
        self, store: Store, settings: Settings, clock: Clock, publisher: Publisher
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.publisher = publisher

    async def get(self, user: str, dlq_id: str) -> DeadLetter:
        letter = await self.store.dlq_get(user, dlq_id)
        if letter is None:
            raise NotFound(f"dlq entry {dlq_id!r} not found")
        return letter

    async def all(self, user: str) -> list[DeadLetter]:
        """Every entry, oldest first."""
        return await self.store.dlq_all(user)

    async def select(
        self,
        user: str,
        ids: list[str],
        flt: Filter,
        cursor: str | None,
        count: int,
        latest_first: bool,
    ) -> tuple[list[DeadLetter], str | None]:
        """The entries with these ids that exist; without ids, a page of those ``flt`` keeps
        and where the next page starts."""
        if ids:
            found = [await self.store.dlq_get(user, dlq_id) for dlq_id in ids]
            return [letter for letter in found if letter is not None], None
        return await self.store.dlq_page(
            user, cursor, count, latest_first, lambda letter: flt.matches(view(letter))
        )

    async def delete(self, user: str, dlq_ids: Iterable[str]) -> int:
        """Remove entries; how many this call removed."""
        return len(await self.store.dlq_take(user, dlq_ids))

    async def delete_one(self, user: str, dlq_id: str) -> None:
        if not await self.delete(user, [dlq_id]):
            raise NotFound(f"dlq entry {dlq_id!r} not found")

    async def retry_one(self, user: str, dlq_id: str, items: list[tuple[str, str]]) -> str:
        """Publish one entry again; its new message id."""
        retried = await self.retry(user, [await self.get(user, dlq_id)], items)
        if not retried:  # a delete or another retry took it since it was read
            raise NotFound(f"dlq entry {dlq_id!r} not found")
        return retried[0]

    async def retry_many(
        self,
        user: str,
        requested: list[str],
        letters: list[DeadLetter],
        items: list[tuple[str, str]],
    ) -> list[str]:
        """Publish ``letters`` again; 404 when an entry ``requested`` by id is missing."""
        if requested and len(letters) < len(set(requested)):
            missing = sorted(set(requested) - {letter.dlq_id for letter in letters})
            raise NotFound(f"dlq entries not found: {', '.join(missing)}")
        retried = await self.retry(user, letters, items)
        if requested and not retried:  # others took every one of them since they were read
            raise NotFound(f"dlq entries not found: {', '.join(sorted(set(requested)))}")
        return retried

    async def retry(
        self, user: str, letters: list[DeadLetter], items: list[tuple[str, str]]
    ) -> list[str]:
        """Publish dead letters again as new messages; the publish headers in ``items``
        override what they set. Each entry is removed first, and only the entries this call
        removed are published: of a retry racing a delete or another retry of the same
        entry, exactly one wins. The publisher's checks (strict destinations, the plan's
        quotas) come before any entry is removed."""
        opts = parse_publish(items, self.settings)
        given = named({name.lower() for name, _ in items})
        now = self.clock.now_ms()
        due = opts.due(now)
        fresh = {
            letter.dlq_id: replace(
                letter.message,
                id=new_id("msg_"),
                created_at=now,
                retried=0,
                state=State.CREATED,
                final_at=None,
                dlq_id=None,
                due=due,
                not_before=due,
                options=letter.message.options.taking(opts, given),
            )
            for letter in letters
        }
        await self.publisher.check(user, opts, [m.url for m in fresh.values()], len(fresh))
        taken = set(await self.store.dlq_take(user, list(fresh)))
        retried = [msg for dlq_id, msg in fresh.items() if dlq_id in taken]
        if retried:
            await self.publisher.add(retried, now)
        return [msg.id for msg in retried]
