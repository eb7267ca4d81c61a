"""Load generators: wrk for throughput when installed, aiohttp (or httpx) otherwise.

Every loop here is bounded twice: by a request count and by a deadline.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx

Headers = dict[str, str]


@dataclass
class Throughput:
    """What a closed-loop load run achieved."""

    tool: str
    requests: int
    seconds: float
    failed: int  # non-2xx answers and socket errors
    started: float  # time.monotonic() when the load began

    @property
    def ok(self) -> int:
        return self.requests - self.failed

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


_LUA = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
%(headers)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n@@{"requests":%%d,"duration_us":%%d,"status":%%d,"socket":%%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


async def wrk(
    url: str, headers: Headers, body: bytes, connections: int, seconds: float
) -> Throughput:
    """Closed loop with wrk (one thread: the servers need the other core)."""
    binary = wrk_path()
    assert binary is not None
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = _LUA % {"body": body.decode(), "headers": lines}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    argv = [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        "-s",
        handle.name,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), seconds + 30)
    Path(handle.name).unlink(missing_ok=True)
    marker = [line for line in out.decode().splitlines() if line.startswith("@@")]
    if proc.returncode != 0 or not marker:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out.decode()} {err.decode()}")
    data = json.loads(marker[-1][2:])
    return Throughput(
        "wrk",
        data["requests"],
        data["duration_us"] / 1e6,
        data["status"] + data["socket"],
        started,
    )


async def aiohttp_closed_loop(
    url: str, headers: Headers, body: bytes, connections: int, seconds: float
) -> Throughput:
    """Closed loop in Python: ``connections`` workers, each sending back to back."""
    done = failed = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal done, failed
            while time.monotonic() < deadline:
                try:
                    async with session.post(url, headers=headers, data=body) as resp:
                        await resp.read()
                        failed += resp.status >= 300
                except aiohttp.ClientError:
                    failed += 1
                done += 1

        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(connections))), seconds + 30
        )
        elapsed = time.monotonic() - started
    return Throughput("python-aiohttp", done, elapsed, failed, started)


async def closed_loop(
    url: str, headers: Headers, body: bytes, connections: int, seconds: float
) -> Throughput:
    """wrk when installed (it never is the bottleneck), else the Python generator."""
    if wrk_path():
        return await wrk(url, headers, body, connections, seconds)
    return await aiohttp_closed_loop(url, headers, body, connections, seconds)


@dataclass
class Batch:
    """A fixed number of requests: when each was sent and what came back."""

    client: str
    started: float
    finished: float
    sent_at: dict[str, float] = field(default_factory=dict)  # message id -> monotonic send time
    answered_at: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.finished - self.started


IdFrom = Callable[[int, bytes], str]
Post = Callable[[int, Headers], Awaitable[tuple[int, bytes]]]


async def send_count(
    client: str,
    url: str,
    count: int,
    concurrency: int,
    headers: Headers,
    body: bytes,
    id_from: IdFrom,
    timeout: float,
    id_header: bool = False,
) -> Batch:
    """Send ``count`` POSTs with ``concurrency`` workers; ``id_from(i, answer)`` names each.

    With ``id_header`` each request carries its own ``Upstash-Message-Id`` (direct sends to
    the receiver), so the receiver can time it the way it times deliveries.
    """
    counter = iter(range(count))
    batch = Batch(client, time.monotonic(), 0.0)
    deadline = batch.started + timeout

    async def one(post: Post, i: int) -> None:
        hdrs = {**headers, "Upstash-Message-Id": f"direct_{i}"} if id_header else headers
        sent = time.monotonic()
        status, answer = await post(i, hdrs)
        now = time.monotonic()
        if status >= 300:
            batch.failures.append(f"{status}: {answer[:200]!r}")
            return
        message_id = f"direct_{i}" if id_header else id_from(i, answer)
        batch.sent_at[message_id] = sent
        batch.answered_at[message_id] = now

    async def run(post: Post) -> None:
        async def worker() -> None:
            for i in counter:
                if time.monotonic() > deadline:
                    batch.failures.append("deadline")
                    return
                try:
                    await one(post, i)
                except (aiohttp.ClientError, httpx.HTTPError, OSError) as exc:
                    batch.failures.append(f"{type(exc).__name__}: {exc}")

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        _, late = await asyncio.wait(workers, timeout=timeout + 30)
        for task in late:
            task.cancel()
            batch.failures.append("deadline")

    if client == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30) as hx:

            async def post_httpx(i: int, hdrs: Headers) -> tuple[int, bytes]:
                resp = await hx.post(url, headers=hdrs, content=body)
                return resp.status_code, resp.content

            await run(post_httpx)
    else:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def post_aiohttp(i: int, hdrs: Headers) -> tuple[int, bytes]:
                async with session.post(url, headers=hdrs, data=body) as resp:
                    return resp.status, await resp.read()

            await run(post_aiohttp)
    batch.finished = time.monotonic()
    return batch


async def steady(
    url: str,
    rate: float,
    seconds: float,
    headers: Headers,
    body: bytes,
    id_from: IdFrom,
    id_header: bool = False,
    connections: int = 32,
) -> Batch:
    """Open loop: one POST every ``1/rate`` s for ``seconds``, whatever the answers take."""
    count = int(rate * seconds)
    batch = Batch("aiohttp-steady", time.monotonic(), 0.0)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            hdrs = {**headers, "Upstash-Message-Id": f"direct_{i}"} if id_header else headers
            sent = time.monotonic()
            try:
                async with session.post(url, headers=hdrs, data=body) as resp:
                    answer = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, OSError) as exc:
                batch.failures.append(f"{type(exc).__name__}: {exc}")
                return
            if status >= 300:
                batch.failures.append(f"{status}: {answer[:200]!r}")
                return
            message_id = f"direct_{i}" if id_header else id_from(i, answer)
            batch.sent_at[message_id] = sent
            batch.answered_at[message_id] = time.monotonic()

        tasks = []
        start = time.monotonic()
        batch.started = start
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        _, late = await asyncio.wait(tasks, timeout=60) if tasks else (set(), set())
        for task in late:
            task.cancel()
            batch.failures.append("no answer within 60s of the last send")
    batch.finished = time.monotonic()
    return batch


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
