"""Scenarios 1-3 of issue 5: publish acceptance, sustained delivery, latency.

Each measures the emulator (its CLI in a child process) and, in the same invocation, the
baseline it is judged against, so the ratio survives a noisy shared machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from load import (
    Batch,
    closed_loop,
    percentile,
    send_count,
    steady,
)
from procs import LOGS, Proc, Redis, SchedWindow, baseline_server, emulator, running
from profiler import Profiler
from report import Figure

from qstash_emulator import DEFAULT_USERS

TOKEN = DEFAULT_USERS[0].token
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
BODY = b'{"event":"order.created","id":12345,"amount":"19.99","currency":"EUR"}'


@dataclass
class Config:
    """How much of everything: ``quick`` for development, the full counts for RESULTS.md."""

    quick: bool
    connections: int = 32
    profile_dir: Path | None = None
    rate: float = 1_000  # scenario 3; issue 21: p99 under 10 ms at 1,000 messages a second

    @property
    def load_seconds(self) -> float:
        return 2 if self.quick else 10

    @property
    def deliveries(self) -> int:
        return 300 if self.quick else 20_000

    @property
    def steady_rate(self) -> float:
        return self.rate

    @property
    def steady_seconds(self) -> float:
        return 2 if self.quick else 10

    @property
    def memory_messages(self) -> int:
        return 500 if self.quick else 100_000

    @property
    def startup_runs(self) -> int:
        return 1 if self.quick else 5

    @property
    def fixture_tests(self) -> int:
        return 20 if self.quick else 300

    @property
    def warm_up(self) -> int:
        return 50 if self.quick else 300


# Processes -----------------------------------------------------------------------------------


@contextlib.contextmanager
def emulator_for(backend: str) -> Iterator[tuple[Proc, Proc | None]]:
    """A fresh emulator (and, for ``redis``, a fresh redis-server behind it)."""
    with contextlib.ExitStack() as stack:
        redis: Proc | None = None
        if backend == "redis":
            redis = stack.enter_context(running(Redis()))
            assert isinstance(redis, Redis)
            emu = stack.enter_context(running(emulator(redis.redis_url)))
        else:
            emu = stack.enter_context(running(emulator()))
        yield emu, redis


@contextlib.asynccontextmanager
async def profiled(cfg: Config, emu: Proc, label: str, title: str) -> AsyncIterator[None]:
    """Sample the emulator with py-spy for the duration of the block when profiling."""
    if cfg.profile_dir is None:
        yield
        return
    profiler = await Profiler.attach(
        emu.pid, LOGS / f"{label}.raw", cfg.profile_dir / f"{label}.md", title
    )
    try:
        yield
    finally:
        await profiler.finish()


def publish_url(emu: Proc, receiver: Proc) -> str:
    return f"{emu.url}/v2/publish/{receiver.url}/hook"


def message_id(_: int, answer: bytes) -> str:
    return str(json.loads(answer)["messageId"])


async def receiver_stats(session: aiohttp.ClientSession, receiver: Proc) -> dict[str, float]:
    async with session.get(f"{receiver.url}/_stats") as resp:
        stats: dict[str, float] = await resp.json()
        return stats


async def reset_receiver(session: aiohttp.ClientSession, receiver: Proc) -> None:
    async with session.post(f"{receiver.url}/_reset") as resp:
        await resp.read()


async def arrivals(session: aiohttp.ClientSession, receiver: Proc) -> dict[str, float]:
    async with session.get(f"{receiver.url}/_arrivals") as resp:
        found: dict[str, float] = await resp.json()
        return found


async def wait_delivered(
    session: aiohttp.ClientSession, receiver: Proc, count: int, timeout: float
) -> dict[str, float]:
    """Poll the receiver until ``count`` distinct messages arrived or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await receiver_stats(session, receiver)
        if stats["unique"] >= count or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.05)


async def warm_up(cfg: Config, session: aiohttp.ClientSession, emu: Proc, receiver: Proc) -> None:
    """Publishes and their deliveries, so connection pools and caches exist; then a clean count."""
    await reset_receiver(session, receiver)
    count = cfg.warm_up
    batch = await send_count(
        "aiohttp", publish_url(emu, receiver), count, 16, AUTH, BODY, message_id, 60
    )
    if batch.failures:
        raise RuntimeError(f"warm-up publishes failed: {batch.failures[:3]} {emu.tail()}")
    await wait_delivered(session, receiver, count, 30)
    await reset_receiver(session, receiver)


# 1. Publish acceptance ------------------------------------------------------------------------


def _count_at(samples: list[tuple[float, float]], at: float) -> float:
    """Receiver count at time ``at``, interpolated between samples."""
    before = [s for s in samples if s[0] <= at]
    after = [s for s in samples if s[0] >= at]
    if not before:
        return after[0][1] if after else 0.0
    if not after:
        return before[-1][1]
    (t0, c0), (t1, c1) = before[-1], after[0]
    return c0 if t1 == t0 else c0 + (c1 - c0) * (at - t0) / (t1 - t0)


async def publish_acceptance(cfg: Config, backend: str) -> list[Figure]:
    seconds, conns = cfg.load_seconds, cfg.connections
    with running(baseline_server("ceiling")) as ceiling:
        url = f"{ceiling.url}/v2/publish/http://127.0.0.1:9/hook"
        await closed_loop(url, AUTH, BODY, conns, 1)
        ceiling_cpu = ceiling.cpu()
        base = await closed_loop(url, AUTH, BODY, conns, seconds)
        base_cpu = (ceiling.cpu() - ceiling_cpu) / max(base.ok, 1) * 1_000
    with (
        running(baseline_server("receiver")) as receiver,
        running(baseline_server("forwarder")) as forwarder,
    ):
        async with aiohttp.ClientSession() as session:
            await closed_loop(publish_url(forwarder, receiver), AUTH, BODY, conns, 1)
            await reset_receiver(session, receiver)
            floor = await closed_loop(publish_url(forwarder, receiver), AUTH, BODY, conns, seconds)
            forwarded = await wait_delivered(session, receiver, floor.ok, 60)
    with running(baseline_server("receiver")) as receiver, emulator_for(backend) as (emu, redis):
        async with aiohttp.ClientSession() as session:
            await warm_up(cfg, session, emu, receiver)
            cpu_before = emu.cpu(), redis.cpu() if redis else 0.0
            samples: list[tuple[float, float]] = []
            stop = asyncio.Event()

            async def sample() -> None:
                while not stop.is_set() and len(samples) < 10_000:
                    stats = await receiver_stats(session, receiver)
                    samples.append((time.monotonic(), stats["unique"]))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.25)

            sampler = asyncio.create_task(sample())
            window = SchedWindow(emu.pid)
            async with profiled(
                cfg, emu, f"1-publish-{backend}", f"1. publish acceptance under wrk ({backend})"
            ):
                window.start()
                res = await closed_loop(publish_url(emu, receiver), AUTH, BODY, conns, seconds)
                threads = window.stop()
            stop.set()
            await sampler
            end = res.started + res.seconds
            third = res.started + res.seconds / 3
            at_end, at_third = _count_at(samples, end), _count_at(samples, third)
            drain_started = time.monotonic()
            final = await wait_delivered(session, receiver, res.ok, 120)
            drained = time.monotonic() - drain_started
            emu_cpu = (emu.cpu() - cpu_before[0]) / max(res.ok, 1) * 1_000
            redis_cpu = (redis.cpu() - cpu_before[1]) / max(res.ok, 1) * 1_000 if redis else 0.0
    # Delivered by the end of the load against accepted by then: the average delivery rate
    # over the load against the acceptance rate. (A rate over the last two thirds assumed a
    # steady acceptance rate, accepted(t) ~ rps * t, which wrk does not keep to the percent.)
    delivery_rate = at_end / res.seconds
    backlog_third, backlog_end = res.ok / 3 - at_third, res.ok - at_end
    lost = max(0, res.ok - int(final["unique"]))
    accept = Figure(
        "1",
        "publish accepted",
        backend,
        res.rps,
        "req/s",
        base.rps,
        "bare Starlette",
        ">= 0.70 x ceiling",
        res.rps >= 0.7 * base.rps and res.failed == 0,
        f"{res.tool}, {conns} connections, {res.seconds:.1f}s; {res.ok} accepted, "
        f"{res.failed} failed; ceiling {base.ok} in {base.seconds:.1f}s ({base.failed} failed)",
    )
    pace = Figure(
        "1",
        "deliveries during 1",
        backend,
        delivery_rate,
        "msg/s",
        res.rps,
        "accept rate",
        ">= 0.95 (no growing backlog)",
        delivery_rate >= 0.95 * res.rps and lost == 0,
        f"messages delivered during the load per second vs accepted per second; backlog "
        f"~{backlog_third:.0f} at 1/3 (if acceptance were steady), {backlog_end:.0f} at the end "
        f"({backlog_end / max(res.rps, 1):.2f}s of publishing), drained "
        f"{drained:.1f}s after the load stopped; {lost} never delivered within 120s",
    )
    cpu = Figure(
        "1",
        "CPU per publish (+ its delivery)",
        backend,
        emu_cpu + redis_cpu,
        "ms",
        base_cpu,
        "bare Starlette, per request",
        "- (load-proof view of 1)",
        None,
        "user+system CPU of the emulator"
        + (f" ({emu_cpu:.2f} ms) and redis-server ({redis_cpu:.2f} ms)" if redis else "")
        + " from the start of the load until the backlog drained, per accepted message; "
        "unlike req/s it does not move with other processes' load",
    )
    forward = Figure(
        "1",
        "accept + forward, no state (floor)",
        backend,
        floor.rps,
        "req/s",
        base.rps,
        "bare Starlette",
        "- (what no emulator on this stack beats)",
        None,
        f"bare Starlette answering an id and sending each body on with aiohttp (no store, "
        f"signature, log or retry): {floor.ok} accepted, {int(forwarded['unique'])} forwarded, "
        f"{floor.failed} failed; the emulator accepted {res.rps / max(floor.rps, 1):.2f} x this",
    )
    loop = threads[0]
    busy = Figure(
        "1",
        "event loop busy under saturating load",
        backend,
        100 * loop.busy,
        "%",
        None,
        "",
        ">= 95 % (of the time it could run)",
        loop.busy >= 0.95,
        f"the emulator's event-loop thread during the load (Linux schedstat): {loop.text()}; "
        "only asleep is a wait of its own (waiting for a CPU is other processes' load); "
        + "; ".join(f"{t.name}: {t.text()}" for t in threads[1:] if t.on_cpu >= 0.005),
    )
    return [accept, pace, cpu, forward, busy]


# 2. Sustained delivery ------------------------------------------------------------------------


async def _direct(
    session: aiohttp.ClientSession, receiver: Proc, client: str, count: int, conns: int
) -> float:
    """Requests per second that ``client`` gets through to the receiver, sent straight."""
    await reset_receiver(session, receiver)
    batch = await send_count(
        client, f"{receiver.url}/hook", count, conns, AUTH, BODY, message_id, 300, id_header=True
    )
    stats = await wait_delivered(session, receiver, count, 30)
    return stats["unique"] / (stats["last"] - batch.started)


async def sustained_delivery(cfg: Config, backend: str) -> list[Figure]:
    count, conns = cfg.deliveries, cfg.connections
    with running(baseline_server("receiver")) as receiver, emulator_for(backend) as (emu, redis):
        async with aiohttp.ClientSession() as session:
            # httpx is far slower here (encode/httpx#3215): a tenth of the count shows its rate.
            direct = {
                "aiohttp": await _direct(session, receiver, "aiohttp", count, conns),
                "httpx": await _direct(session, receiver, "httpx", max(50, count // 10), conns),
            }
            await warm_up(cfg, session, emu, receiver)
            cpu_before = emu.cpu() + (redis.cpu() if redis else 0.0)
            async with profiled(
                cfg,
                emu,
                f"2-delivery-{backend}",
                f"2. {count:,} published and delivered ({backend})",
            ):
                batch = await send_count(
                    "aiohttp", publish_url(emu, receiver), count, conns, AUTH, BODY, message_id, 600
                )
                stats = await wait_delivered(session, receiver, count, 300)
            cpu = (emu.cpu() + (redis.cpu() if redis else 0.0) - cpu_before) / count * 1_000
            arrived = await arrivals(session, receiver)
    fastest = max(direct, key=lambda c: direct[c])
    got = sum(1 for i in batch.sent_at if i in arrived)
    last = max((arrived[i] for i in batch.sent_at if i in arrived), default=batch.started)
    seconds = last - batch.started
    rate = got / seconds if seconds > 0 else 0.0
    return [
        Figure(
            "2",
            f"{count:,} deliveries",
            backend,
            rate,
            "msg/s",
            direct[fastest],
            f"direct, {fastest}",
            ">= 0.50 x direct",
            rate >= 0.5 * direct[fastest] and got == count and not batch.failures,
            f"{got}/{count} delivered in {seconds:.2f}s ({int(stats['count'] - stats['unique'])} "
            f"duplicates); publishing took {batch.seconds:.2f}s "
            f"({count / batch.seconds:,.0f}/s, {len(batch.failures)} failed); direct sends: "
            + ", ".join(f"{c} {r:,.0f}/s" for c, r in direct.items())
            + f"; emulator{' + redis' if redis else ''} CPU {cpu:.2f} ms per message",
        )
    ]


# 3. Latency at a steady rate ------------------------------------------------------------------


def _latencies(batch: Batch, arrived: dict[str, float]) -> tuple[list[float], int]:
    found = [(arrived[i] - t) * 1_000 for i, t in batch.sent_at.items() if i in arrived]
    return found, len(batch.sent_at) - len(found)


async def latency(cfg: Config, backend: str) -> list[Figure]:
    rate, seconds = cfg.steady_rate, cfg.steady_seconds
    expected = int(rate * seconds)
    with running(baseline_server("receiver")) as receiver, emulator_for(backend) as (emu, _):
        async with aiohttp.ClientSession() as session:
            await warm_up(cfg, session, emu, receiver)
            direct = await steady(
                f"{receiver.url}/hook", rate, seconds, AUTH, BODY, message_id, id_header=True
            )
            await wait_delivered(session, receiver, len(direct.sent_at), 30)
            base, _ = _latencies(direct, await arrivals(session, receiver))
            await reset_receiver(session, receiver)
            async with profiled(
                cfg, emu, f"3-latency-{backend}", f"3. steady {rate:.0f} msg/s ({backend})"
            ):
                batch = await steady(
                    publish_url(emu, receiver), rate, seconds, AUTH, BODY, message_id
                )
                await wait_delivered(session, receiver, len(batch.sent_at), 30)
            found, missing = _latencies(batch, await arrivals(session, receiver))
    answers = [(batch.answered_at[i] - t) * 1_000 for i, t in batch.sent_at.items()]
    sent_ok = len(batch.sent_at) == expected and not batch.failures and missing == 0
    # Publishes answered this late mean the emulator (or the load generator, on a machine
    # short of CPU) fell behind the rate: the latencies are then the backlog's, not its own.
    behind = percentile(answers, 50) > 100 or percentile(base, 50) > 100
    note = (
        ("FELL BEHIND (publish answers or direct sends p50 > 100 ms): " if behind else "")
        + f"{len(found)}/{expected} delivered at {rate:.0f}/s over {seconds:.0f}s, {missing} "
        f"missing, {len(batch.failures)} publish failures; publish answered in p50 "
        f"{percentile(answers, 50):.2f} ms, p99 {percentile(answers, 99):.2f} ms; delivery p90 "
        f"{percentile(found, 90):.2f} ms, max {max(found, default=float('nan')):.1f} ms; "
        f"direct p50 {percentile(base, 50):.2f} ms, p99 {percentile(base, 99):.2f} ms"
    )
    p50, p99 = percentile(found, 50), percentile(found, 99)
    return [
        Figure(
            "3",
            f"publish->delivery p50 at {rate:,.0f}/s",
            backend,
            p50,
            "ms",
            percentile(base, 50),
            "direct send",
            "< 3 ms",
            p50 < 3 and sent_ok,
            note,
        ),
        Figure(
            "3",
            f"publish->delivery p99 at {rate:,.0f}/s",
            backend,
            p99,
            "ms",
            percentile(base, 99),
            "direct send",
            "< 10 ms",
            p99 < 10 and sent_ok,
        ),
    ]
