"""Scenario 6: big bodies on a server left running: what is kept, in RSS and in answers.

``python bench/big_bodies.py [extra dev options]`` starts ``qstash-emulator dev`` (in memory,
``--message-grace 1s``) and a destination in this process, then:

1. publishes 30 messages of 9 MB to a destination answering 200, waits until all are
   delivered and the grace period is over, and reads the emulator's RSS and the size of the
   answer to ``GET /v2/logs?count=1000``;
2. publishes 120 small messages to a destination answering 200 with 10 MB, and reads the
   RSS again once they are delivered.

Figures are printed one a line; bench/RESULTS.md keeps a before/after run.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp
from aiohttp import web
from procs import Proc, free_port, running

from qstash_emulator import DEFAULT_USERS

BIG_BODY = 9 << 20
BIG_ANSWER = 10 << 20
PUBLISHES = 30
ANSWERS = 120
AUTH = {"Authorization": f"Bearer {DEFAULT_USERS[0].token}"}


def _emulator(extra: list[str]) -> Proc:
    port = free_port()
    argv = [sys.executable, "-m", "qstash_emulator", "dev", "--port", str(port), "--quiet"]
    return Proc("emulator", [*argv, "--message-grace", "1s", *extra], port)


async def _destination() -> tuple[web.AppRunner, str]:
    answer = os.urandom(BIG_ANSWER // 2).hex().encode()

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"ok")

    async def big(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer)

    app = web.Application(client_max_size=BIG_BODY * 2)
    app.router.add_post("/ok", ok)
    app.router.add_post("/big", big)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def _delivered(session: aiohttp.ClientSession, emu: Proc, ids: list[str]) -> None:
    """Wait until every id has a DELIVERED log row (at most 120 s)."""
    left = set(ids)
    deadline = time.monotonic() + 120
    cursor = ""
    while left and time.monotonic() < deadline:
        params = {"state": "DELIVERED", "count": "100"}
        if cursor:
            params["cursor"] = cursor
        async with session.get(f"{emu.url}/v2/logs", params=params, headers=AUTH) as resp:
            page = await resp.json()
        left -= {row["messageId"] for row in page["logs"]}
        cursor = page.get("cursor") or ""
        if not cursor:
            await asyncio.sleep(0.2)
    if left:
        raise RuntimeError(f"{len(left)} messages not delivered")


async def _publish(session: aiohttp.ClientSession, emu: Proc, url: str, body: bytes) -> str:
    async with session.post(f"{emu.url}/v2/publish/{url}", data=body, headers=AUTH) as resp:
        answer = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"publish answered {resp.status}: {answer}")
        return str(answer["messageId"])


async def _settled(emu: Proc) -> int:
    """RSS once the grace period is over and the upkeep ran (2 s), in bytes."""
    await asyncio.sleep(2)
    return emu.rss()


async def main(extra: list[str]) -> None:
    mb = 1 << 20
    runner, dest = await _destination()
    try:
        with running(_emulator(extra)) as emu:
            timeout = aiohttp.ClientTimeout(total=600)
            # A connection each request: the server may close one after a long answer.
            connector = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
                print(f"RSS idle: {emu.rss() / mb:,.0f} MB", flush=True)
                body = os.urandom(BIG_BODY // 2).hex().encode()
                ids = [await _publish(session, emu, f"{dest}/ok", body) for _ in range(PUBLISHES)]
                await _delivered(session, emu, ids)
                rss = await _settled(emu)
                print(f"RSS after {PUBLISHES} publishes of 9 MB: {rss / mb:,.0f} MB", flush=True)
                started = time.perf_counter()
                params = {"count": "1000"}
                async with session.get(f"{emu.url}/v2/logs", params=params, headers=AUTH) as r:
                    size = len(await r.read())
                took = time.perf_counter() - started
                print(f"GET /v2/logs?count=1000: {size / mb:,.1f} MB in {took:.2f} s", flush=True)
                print(f"RSS after that answer: {emu.rss() / mb:,.0f} MB", flush=True)
                small = [await _publish(session, emu, f"{dest}/big", b"x") for _ in range(ANSWERS)]
                await _delivered(session, emu, small)
                rss = await _settled(emu)
                print(f"RSS after {ANSWERS} answers of 10 MB: {rss / mb:,.0f} MB", flush=True)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
