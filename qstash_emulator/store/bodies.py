"""The bodies log rows and dead letters show, stored once each and kept within a byte budget.

A row's ``body`` or ``responseBody`` longer than ``INLINE`` characters leaves the row: the row
keeps a reference (``bodyRef`` / ``responseBodyRef``: key digest and length) and the text is
stored once under ``u:{user}:body:{digest}``, however many rows show it. A dead letter's
response body does the same (its ``rbref`` field); its message body stays, to be retried.
The ``bodies`` index scores each stored body with the number of bytes stored before it; once
more than the budget was stored after a body, it is deleted: the oldest go first, and what
stays is within the budget. A row whose body is gone reads ``bodyDropped: true``
(docs/behaviour.md#memory).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from .group_commit import Writes
from .keyspace import Keyspace

__all__ = ["INLINE", "BodyStore"]

INLINE = 4_096
FIELDS = ("body", "responseBody")
_RECENT = 4_096


class BodyStore:
    """Takes long bodies out of log rows, stores them, and puts them back on reading."""

    def __init__(self, redis: Any, keyspace: Keyspace, budget: int) -> None:
        self.redis = redis
        self.keyspace = keyspace
        self.budget = budget
        self._stored: int | None = None  # bytes ever stored: where the next body starts
        self._trimmed = 0  # bodies starting before this were deleted
        # Bodies stored lately: a message's rows show its body several times, stored once.
        self._recent: OrderedDict[str, None] = OrderedDict()

    async def ready(self) -> None:
        """Learn where the next body starts (after a restart, the newest stored one's end)."""
        if self._stored is None:
            last = await self.redis.zrange(self.keyspace.bodies, -1, -1, withscores=True)
            key = last[0][0] if last else None
            size = await self.redis.strlen(key) if key is not None else 0
            self._stored = int(last[0][1]) + size if last else 0

    def claim(self, user: str, data: bytes) -> tuple[str, str, bool]:
        """The digest and key ``data`` is stored under, and whether it must be written (it
        was not stored lately)."""
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        key = self.keyspace.body(user, digest)
        if key in self._recent:
            self._recent.move_to_end(key)
            return digest, key, False
        self._recent[key] = None
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        return digest, key, True

    def take_out(self, user: str, row: dict[str, Any]) -> list[tuple[str, bytes]]:
        """Replace ``row``'s long bodies by references; the (key, data) pairs to store."""
        out = []
        for field in FIELDS:
            text = row.get(field)
            if not isinstance(text, str) or len(text) <= INLINE:
                continue
            data = text.encode()
            digest, key, fresh = self.claim(user, data)
            del row[field]
            row[field + "Ref"] = [digest, len(data)]
            if fresh:
                out.append((key, data))
        return out

    def write(self, w: Writes, bodies: list[tuple[str, bytes]]) -> None:
        """Queue on ``w`` the writes that store ``bodies`` (``ready`` was awaited)."""
        for key, data in bodies:
            if self._stored is None:  # a flush came in between: nothing is stored
                self._stored = 0
            w.pipe.set(key, data)
            w.pipe.zadd(self.keyspace.bodies, {key: self._stored})
            self._stored += len(data)

    async def trim(self) -> None:
        """Delete the bodies stored before the last ``budget`` bytes."""
        if self._stored is None or self._stored - self.budget <= self._trimmed:
            return
        line = self._stored - self.budget
        while True:
            keys = await self.redis.zrangebyscore(self.keyspace.bodies, "-inf", f"({line}", 0, 500)
            if not keys:
                break
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(*keys)
            pipe.zrem(self.keyspace.bodies, *keys)
            await pipe.execute()
            for key in keys:
                self._recent.pop(key.decode(), None)
        self._trimmed = line

    async def fetch(self, user: str, digests: list[str]) -> dict[str, bytes | None]:
        """The stored bodies by digest; None for one no longer stored."""
        unique = list(dict.fromkeys(digests))
        if not unique:
            return {}
        found = await self.redis.mget([self.keyspace.body(user, d) for d in unique])
        return dict(zip(unique, found, strict=True))

    async def put_back(self, user: str, rows: list[dict[str, Any]]) -> None:
        """Put the stored bodies back into ``rows``; a body no longer stored is marked
        ``<field>Dropped``."""
        wanted = [(row, field) for row in rows for field in FIELDS if field + "Ref" in row]
        found = await self.fetch(user, [row[field + "Ref"][0] for row, field in wanted])
        for row, field in wanted:
            data = found[row.pop(field + "Ref")[0]]
            if data is None:
                row[field + "Dropped"] = True
            else:
                row[field] = data.decode()

    def forget(self) -> None:
        """After a flush: nothing is stored any more."""
        self._stored, self._trimmed = None, 0
        self._recent.clear()

    def forget_recent(self) -> None:
        """After a user's purge: the bodies stored lately may be gone."""
        self._recent.clear()


def row_bytes(row: dict[str, Any], raw: bytes) -> int:
    """What a row weighs in an answer: its stored bytes and the bodies it refers to."""
    return len(raw) + sum(int(row[f + "Ref"][1]) for f in FIELDS if f + "Ref" in row)
