"""Benchmark the emulator against baselines measured in the same run (issue 5).

    python bench/run.py                 # every scenario, in memory and on a real Redis
    python bench/run.py --quick         # small counts, under a minute, for development
    python bench/run.py -s 1 -s 3 --backend memory
    python bench/run.py --profile -s 1  # py-spy on the emulator, summaries in bench/profiles/
    python bench/run.py --against eb64f51 -s 3 -s 4 --rounds 3   # before and after, in turns

Scenarios: 1 publish acceptance, 2 sustained delivery, 3 latency at 1,000 msg/s, 4 fixture
cost, 5 memory per pending message, 6 deliveries with the dashboard open or the feed
printing. Servers run in their own processes on loopback ports; the table is printed and,
unless profiling or --no-write, written to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from collections.abc import Awaitable, Callable

from against import checkout, pair_up, pairs_markdown, pairs_notes, pairs_table
from dashboard import watching_cost
from fixture_cost import fixture_cost
from load import wrk_path
from memory import pending_memory
from procs import HERE, LOGS, tree
from profiler import index, py_spy
from report import Figure, machine, replace_top, table, write_results
from scenarios import Config, latency, publish_acceptance, sustained_delivery

Scenario = Callable[[Config, str], Awaitable[list[Figure]]]
SCENARIOS: dict[str, tuple[str, Scenario | None]] = {
    "1": ("publish acceptance", publish_acceptance),
    "2": ("sustained delivery", sustained_delivery),
    "3": ("latency at a steady rate", latency),
    "4": ("fixture cost", None),
    "5": ("memory per pending message", pending_memory),
    "6": ("deliveries while watching: dashboard open, feed printing", watching_cost),
}
ON_REDIS = {"1", "2", "3", "5"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts (< 1 minute)")
    parser.add_argument(
        "-s",
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only these scenarios (repeatable; default all)",
    )
    parser.add_argument(
        "--backend",
        choices=["memory", "redis", "both"],
        default="both",
        help="the emulator's store for scenarios 1-3 and 5 (default both)",
    )
    parser.add_argument(
        "--fixture",
        choices=["auto", "plugin", "stand-in"],
        default="auto",
        help="scenario 4: the plugin's qstash fixture, the stand-in, or whichever exists",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="attach py-spy to the emulator during each load; write bench/profiles/*.md",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=1_000,
        help="scenario 3's publishes a second (default 1,000, the issue's; a lower one shows "
        "latency on a machine too loaded to keep up with that)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    parser.add_argument(
        "--against",
        metavar="REF",
        help="also run the scenarios on commit REF (a temporary git worktree), in turns with "
        "this tree; the table shows each figure before and after",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="with --against: rounds of each side (default 3; figures are their medians)",
    )
    return parser


def _stack() -> dict[str, str]:
    import importlib.util

    fast = [m for m in ("uvloop", "httptools") if importlib.util.find_spec(m)]
    generator = f"wrk ({wrk_path()})" if wrk_path() else "Python aiohttp (wrk not installed)"
    return {
        "load generator": generator,
        "server stack": "uvicorn with " + (" + ".join(fast) or "asyncio + h11"),
    }


async def _scenarios(
    args: argparse.Namespace, cfg: Config, started: float, side: str = ""
) -> list[Figure]:
    """The chosen scenarios once, on each chosen backend."""
    backends = ["memory", "redis"] if args.backend == "both" else [args.backend]
    figures: list[Figure] = []
    for key in args.scenario or sorted(SCENARIOS):
        title, scenario = SCENARIOS[key]
        if scenario is None:
            print(f"[{time.monotonic() - started:5.0f}s] {side}{key}. {title}", flush=True)
            figures += await asyncio.to_thread(
                fixture_cost, cfg.startup_runs, cfg.fixture_tests, args.fixture, cfg.quick
            )
            continue
        for backend in backends if key in ON_REDIS else ["memory"]:
            print(
                f"[{time.monotonic() - started:5.0f}s] {side}{key}. {title} ({backend})",
                flush=True,
            )
            figures += await scenario(cfg, backend)
    return figures


async def _main(args: argparse.Namespace) -> int:
    if args.backend != "memory" and not shutil.which("redis-server"):
        print("redis-server is missing: apt-get update && apt-get install -y redis-server")
        return 2
    profile_dir = HERE / "profiles" if args.profile else None
    if profile_dir is not None and py_spy() is None:
        print("py-spy is missing: pip install py-spy")
        return 2
    cfg = Config(quick=args.quick, profile_dir=profile_dir, rate=args.rate)
    if args.against:
        if args.profile:
            print("--against and --profile do not go together (the profiles would overwrite)")
            return 2
        return await _before_after(args, cfg)
    started = time.monotonic()
    figures = await _scenarios(args, cfg, started)
    info = {**machine(), **_stack(), "took": f"{time.monotonic() - started:.0f}s"}
    print()
    print("\n".join(f"{k}: {v}" for k, v in info.items()))
    print()
    print(table(figures))
    print()
    for f in figures:
        if f.note:
            print(f"  {f.scenario} {f.name} ({f.backend}): {f.note}")
    print(f"\nserver logs: {LOGS}")
    if profile_dir is not None:
        print(index(profile_dir))
        print(f"profiles: {profile_dir}/*.md")
    elif not args.no_write:
        mode = "quick" if args.quick else "full"
        command = "python bench/run.py " + " ".join(sys.argv[1:])
        write_results(HERE / "RESULTS.md", figures, info, mode, command.strip())
        print(f"written: {HERE / 'RESULTS.md'}")
    met = sum(f.passed is True for f in figures)
    print(f"targets: {met} met, {sum(f.passed is False for f in figures)} missed")
    return 0


async def _before_after(args: argparse.Namespace, cfg: Config) -> int:
    """The scenarios on ``args.against`` and on this tree, in turns, ``args.rounds`` each."""
    started = time.monotonic()
    before: list[list[Figure]] = []
    after: list[list[Figure]] = []
    with checkout(args.against) as (path, short):
        for round_ in range(args.rounds):
            # before, after; after, before; ...: each side goes first as often as the other.
            sides = [(f"before, {short}", path, before), ("after", HERE.parent, after)]
            for side, where, runs in sides if round_ % 2 == 0 else sides[::-1]:
                with tree(where):
                    label = f"round {round_ + 1}, {side}: "
                    runs.append(await _scenarios(args, cfg, started, label))
    pairs = pair_up(before, after)
    info = {
        **machine(),
        "before": f"{short} (git worktree of {args.against})",
        **_stack(),
        "rounds": f"{args.rounds} of each side, in turns; figures are medians over the rounds",
        "took": f"{time.monotonic() - started:.0f}s",
    }
    print()
    print("\n".join(f"{k}: {v}" for k, v in info.items()))
    print()
    print(pairs_table(pairs))
    print()
    print("\n".join(pairs_notes(pairs)))
    print(f"\nserver logs: {LOGS}")
    if not args.no_write:
        command = ("python bench/run.py " + " ".join(sys.argv[1:])).strip()
        replace_top(
            HERE / "RESULTS.md",
            [
                "# Benchmark results",
                "",
                f"Written by `{command}` ({'quick' if args.quick else 'full'} mode): each "
                "figure on the baseline commit (before) and on this tree (after), in turns in",
                "the same invocation on the same machine. The ratios to each figure's own",
                "baseline (measured beside it in the same round) move less with the machine's",
                "load than the absolute numbers.",
                "",
                *(f"- {key}: {value}" for key, value in info.items()),
                "",
                pairs_markdown(pairs),
                "",
                "## Notes",
                "",
                *pairs_notes(pairs),
                "",
            ],
        )
        print(f"written: {HERE / 'RESULTS.md'}")
    return 0


def main() -> int:
    args = _parser().parse_args()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_main(args))
    return uvloop.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
