"""One emulator per store: a lease in Redis that its holder renews while it runs.

Two emulators on one Redis (a restart that overlaps the old process, two dev servers on one
compose Redis) would each claim and deliver every message: claims, flow-control slots, queue
places and schedule runs are decided by one process. So the first takes a lease (a key with a
few seconds to live, renewed every second) and a second waits for it: if the holder stops or
dies, its lease is gone within ``TTL_MS`` and the newcomer takes over; if the holder is still
renewing, the newcomer refuses to start and names it. The in-memory store is private to its
process and needs none (``Store.lease`` is None there).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from typing import Any

import redis.asyncio as aioredis

from .. import _json

__all__ = ["RENEW_S", "TTL_MS", "Lease", "StoreTaken", "StoreUnreachable"]

TTL_MS = 5_000
RENEW_S = 1.0


class StoreTaken(Exception):
    """Another emulator holds this store's lease and is still running."""


class StoreUnreachable(Exception):
    """The Redis at the URL did not answer (or refused) while the lease was being taken."""


class Lease:
    """This emulator's claim on the store at ``key``; ``address`` names it to others."""

    def __init__(self, redis: Any, key: str) -> None:
        self._redis = redis
        self.key = key
        self.token = secrets.token_hex(8)
        self.address = ""
        self.held = False

    def _value(self) -> bytes:
        return _json.dumps(
            {
                "token": self.token,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "url": self.address,
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )

    def _mine(self, raw: bytes | None) -> bool:
        return raw is not None and _holder(raw).get("token") == self.token

    async def acquire_at(self, url: str) -> None:
        """Take the lease through a connection of its own to ``url`` (before the server's
        event loop exists, so a refusal can be a plain message); the server's connections
        then find it theirs."""
        client = aioredis.Redis.from_url(url)
        try:
            await self.acquire(client)
        except aioredis.RedisError as exc:
            raise StoreUnreachable(str(exc)) from exc
        finally:
            await client.aclose()

    async def acquire(self, redis: Any = None, wait_s: float = TTL_MS / 1_000 + 1) -> None:
        """Take the lease, waiting up to ``wait_s`` for a holder that stopped renewing it."""
        redis = redis or self._redis
        deadline = time.monotonic() + wait_s
        while True:
            if await redis.set(self.key, self._value(), nx=True, px=TTL_MS):
                self.held = True
                return
            current = await redis.get(self.key)
            if self._mine(current):
                self.held = True
                return
            if time.monotonic() >= deadline:
                raise StoreTaken(
                    "another qstash-emulator is using this Redis "
                    f"({describe(current)}); stop it first, or give each emulator a Redis "
                    "database of its own"
                )
            await asyncio.sleep(0.2)

    async def renew(self) -> bool:
        """Extend the lease; False when another emulator holds it now (ours lapsed)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.key)
                current = await pipe.get(self.key)
                if current is not None and not self._mine(current):
                    self.held = False
                    return False
                pipe.multi()
                pipe.set(self.key, self._value(), px=TTL_MS)
                await pipe.execute()
            except aioredis.WatchError:  # taken between the read and the write: look again
                return await self.renew()
        self.held = True
        return True

    async def holder(self) -> bytes | None:
        """Who holds the lease now (``describe`` names it)."""
        raw: bytes | None = await self._redis.get(self.key)
        return raw

    async def release(self) -> None:
        """Give the lease up, if it is still ours, so a successor need not wait for it."""
        if not self.held:
            return
        self.held = False
        async with self._redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.key)
                if self._mine(await pipe.get(self.key)):
                    pipe.multi()
                    pipe.delete(self.key)
                    await pipe.execute()
            except aioredis.WatchError:
                pass


def _holder(raw: bytes) -> dict[str, Any]:
    try:
        value = _json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def describe(raw: bytes | None) -> str:
    """The holder as a person would name it: its URL, host and process id."""
    holder = _holder(raw) if raw is not None else {}
    parts = [
        str(holder["url"]) if holder.get("url") else "",
        f"pid {holder['pid']} on {holder.get('host', '?')}" if holder.get("pid") else "",
        f"since {holder['since']}" if holder.get("since") else "",
    ]
    return ", ".join(p for p in parts if p) or "unknown holder"
