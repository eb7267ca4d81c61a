"""Scenario 6: what watching costs deliveries: a dashboard open, and the terminal feed.

Dashboard: one emulator, one receiver. Rounds alternate without and with a headless Chromium
showing the dashboard (Activity, then Messages: the live stream and the views it refreshes),
each publishing and delivering the same count; the figure is the median rate with the page
open over the median without it, so the machine's drift hits both sides alike.

Feed: two emulators, one printing the live feed (the default; to its log file here) and one
started with ``--quiet``, rounds alternating between them the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
from load import send_count
from procs import Proc, baseline_server, emulator, running
from report import Figure
from scenarios import (
    AUTH,
    BODY,
    Config,
    arrivals,
    emulator_for,
    message_id,
    publish_url,
    reset_receiver,
    wait_delivered,
    warm_up,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ROUNDS = 3  # of each kind


@contextlib.contextmanager
def dashboard_open(emu: Proc, view: str) -> Iterator[Any]:
    """Headless Chromium showing the dashboard's ``view``, its live stream connected."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="qe-bench-chromium-")
    for flag in (
        "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
        "--disable-background-networking --disable-component-update --disable-sync "
        "--window-size=1400,900"
    ).split():
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"{emu.url}/#view={view}")
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.ID, "live").text == "live", "the dashboard's stream"
        )
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


async def _round(
    session: aiohttp.ClientSession, emu: Proc, receiver: Proc, count: int, conns: int
) -> tuple[float, float]:
    """Publish ``count`` and wait for them: deliveries a second, and emulator CPU a message."""
    await reset_receiver(session, receiver)
    cpu_before = emu.cpu()
    batch = await send_count(
        "aiohttp", publish_url(emu, receiver), count, conns, AUTH, BODY, message_id, 600
    )
    await wait_delivered(session, receiver, count, 300)
    cpu = (emu.cpu() - cpu_before) / count * 1_000
    arrived = await arrivals(session, receiver)
    got = [arrived[i] for i in batch.sent_at if i in arrived]
    if len(got) < count or batch.failures:
        raise RuntimeError(f"{len(got)}/{count} delivered, {len(batch.failures)} failed")
    return len(got) / (max(got) - batch.started), cpu


async def dashboard_cost(cfg: Config, backend: str) -> list[Figure]:
    count = 300 if cfg.quick else 5_000
    rates: dict[str, list[float]] = {"without": [], "with": []}
    cpus: dict[str, list[float]] = {"without": [], "with": []}
    started = time.monotonic()
    with running(baseline_server("receiver")) as receiver, emulator_for(backend) as (emu, _):
        async with aiohttp.ClientSession() as session:
            await warm_up(cfg, session, emu, receiver)
            for n in range(ROUNDS):
                rate, cpu = await _round(session, emu, receiver, count, cfg.connections)
                rates["without"].append(rate)
                cpus["without"].append(cpu)
                view = "activity" if n % 2 == 0 else "messages"
                with dashboard_open(emu, view):
                    rate, cpu = await _round(session, emu, receiver, count, cfg.connections)
                rates["with"].append(rate)
                cpus["with"].append(cpu)
    with_page, without = (statistics.median(rates[k]) for k in ("with", "without"))
    note = (
        f"{ROUNDS} rounds each of {count:,} published and delivered, alternating, Activity and "
        f"Messages views; rates with the page open {_list(rates['with'])}, without "
        f"{_list(rates['without'])} msg/s; emulator CPU per message "
        f"{statistics.median(cpus['with']):.2f} ms open, "
        f"{statistics.median(cpus['without']):.2f} ms not; took {time.monotonic() - started:.0f}s"
    )
    return [
        Figure(
            "6",
            "deliveries with the dashboard open",
            backend,
            with_page,
            "msg/s",
            without,
            "same, no page open",
            ">= 0.90",
            with_page >= 0.9 * without,
            note,
        )
    ]


async def feed_cost(cfg: Config, backend: str) -> list[Figure]:
    count = 300 if cfg.quick else 5_000
    rates: dict[str, list[float]] = {"feed": [], "quiet": []}
    cpus: dict[str, list[float]] = {"feed": [], "quiet": []}

    def start(*extra: str) -> Proc:
        return emulator(None, *extra, name="emulator-quiet" if extra else "emulator")

    with (
        running(baseline_server("receiver")) as receiver,
        running(start()) as loud,
        running(start("--quiet")) as quiet,
    ):
        async with aiohttp.ClientSession() as session:
            for emu in (loud, quiet):
                await warm_up(cfg, session, emu, receiver)
            for _ in range(ROUNDS):
                for kind, emu in (("feed", loud), ("quiet", quiet)):
                    rate, cpu = await _round(session, emu, receiver, count, cfg.connections)
                    rates[kind].append(rate)
                    cpus[kind].append(cpu)
    with_feed, without = (statistics.median(rates[k]) for k in ("feed", "quiet"))
    note = (
        f"{ROUNDS} rounds each of {count:,}, alternating; rates printing the feed "
        f"{_list(rates['feed'])}, with --quiet {_list(rates['quiet'])} msg/s; emulator CPU per "
        f"message {statistics.median(cpus['feed']):.2f} ms printing, "
        f"{statistics.median(cpus['quiet']):.2f} ms quiet"
    )
    return [
        Figure(
            "6",
            "deliveries while the feed prints",
            backend,
            with_feed,
            "msg/s",
            without,
            "same, --quiet",
            ">= 0.90",
            with_feed >= 0.9 * without,
            note,
        )
    ]


async def watching_cost(cfg: Config, backend: str) -> list[Figure]:
    """Both figures of scenario 6."""
    return [*await dashboard_cost(cfg, backend), *await feed_cost(cfg, backend)]


def _list(values: list[float]) -> str:
    return "/".join(f"{v:,.0f}" for v in values)


if __name__ == "__main__":  # python bench/dashboard.py [--quick]
    from report import table

    figures = asyncio.run(watching_cost(Config(quick="--quick" in sys.argv), "memory"))
    print(table(figures))
    for figure in figures:
        print(figure.note)
