"""Scenario 5: resident memory per pending (delayed) message with a 1 KB body.

The baselines are the floor of each store: a Python dict of id -> 1 KB bytes in a fresh
interpreter (``python bench/memory.py floor N``), and plain ``SET id <1 KB>`` in a fresh
redis-server.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp
from load import send_count
from procs import Proc, Redis, baseline_server, python_child, rss_bytes, running
from report import Figure
from scenarios import AUTH, Config, emulator_for, message_id, profiled, publish_url, receiver_stats

BODY_BYTES = 1024
TARGET = 3 * 1024


def body() -> bytes:
    return os.urandom(BODY_BYTES // 2).hex().encode()


async def _settled_rss(procs: list[Proc]) -> int:
    """Total RSS once it stops moving (allocators return pages lazily), at most 3 s."""
    last = -1
    for _ in range(12):
        now = sum(p.rss() for p in procs)
        if now == last:
            return now
        last = now
        await asyncio.sleep(0.25)
    return last


async def _redis_floor(count: int) -> float:
    import redis.asyncio as aioredis

    with running(Redis()) as server:
        assert isinstance(server, Redis)
        client = aioredis.Redis.from_url(server.redis_url)
        try:
            before = await _settled_rss([server])
            payload = body()
            for start in range(0, count, 1_000):
                pipe = client.pipeline(transaction=False)
                for i in range(start, min(count, start + 1_000)):
                    pipe.set(f"qe:m:msg_{i:022d}", payload)
                await pipe.execute()
            after = await _settled_rss([server])
        finally:
            await client.aclose()
    return (after - before) / count


def _python_floor(count: int) -> float:
    out = python_child("memory.py", "floor", str(count))
    return float(out.strip())


async def pending_memory(cfg: Config, backend: str) -> list[Figure]:
    count = cfg.memory_messages
    payload = body()
    headers = {**AUTH, "Content-Type": "application/octet-stream", "Upstash-Delay": "1d"}
    with running(baseline_server("receiver")) as receiver, emulator_for(backend) as (emu, redis):
        procs = [emu] + ([redis] if redis else [])
        url = publish_url(emu, receiver)
        warm = await send_count("aiohttp", url, cfg.warm_up, 16, headers, payload, message_id, 60)
        if warm.failures:
            raise RuntimeError(f"warm-up failed: {warm.failures[:3]} {emu.tail()}")
        before = await _settled_rss(procs)
        async with profiled(
            cfg, emu, f"5-memory-{backend}", f"5. {count:,} delayed 1 KB publishes ({backend})"
        ):
            batch = await send_count(
                "aiohttp", url, count, cfg.connections, headers, payload, message_id, 900
            )
        after = await _settled_rss(procs)
        emu_share = emu.rss()
        async with aiohttp.ClientSession() as session:
            delivered = int((await receiver_stats(session, receiver))["count"])
    per_message = (after - before) / count
    floor = await _redis_floor(count) if backend == "redis" else _python_floor(count)
    where = "emulator + redis-server" if redis else "emulator"
    return [
        Figure(
            "5",
            f"RSS per pending 1 KB message ({count:,})",
            backend,
            per_message,
            "B",
            floor,
            "redis SET floor" if redis else "Python dict floor",
            "< 3 KB",
            per_message < TARGET and not batch.failures and delivered == 0,
            f"{where} RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB "
            f"(emulator alone now {emu_share / 2**20:.0f} MiB); published at "
            f"{count / batch.seconds:,.0f}/s; {len(batch.failures)} failed; "
            f"{delivered} delivered early",
        )
    ]


def _floor_child(count: int) -> None:
    """Print bytes per entry of a dict of ``count`` ids -> distinct 1 KB bodies."""
    before = rss_bytes(os.getpid())
    store = {f"msg_{i:022d}": os.urandom(BODY_BYTES) for i in range(count)}
    time.sleep(0.2)
    after = rss_bytes(os.getpid())
    print((after - before) / len(store))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "floor":
        _floor_child(int(sys.argv[2]))
    else:
        sys.exit("usage: memory.py floor N")
