"""Scenario 4: what the emulator costs a test suite, at start-up and per test.

Start-up is timed in fresh interpreters (``python bench/fixture_cost.py startup emulator``),
imports included, against the same start of a bare Starlette app under uvicorn. The
per-test overhead comes from a generated pytest session that interleaves N tests using the
fixture with N identical tests without it, and from timing ``Emulator.reset()`` directly.

The typical test (``python bench/fixture_cost.py typical N``) is what a suite does: a
scripted endpoint, ``qstash.client()``, one publish and ``wait_for``. The fixture's own cost
in it is the test's time (set-up, call, teardown) less the publish and the delivery (timed
inside the test) and less what pytest spends on an empty test.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from report import Figure

_T0 = time.perf_counter()  # before any import below, so start-up includes them

# --- Switch to the plugin's fixture here -------------------------------------------------------
# Until conftest_plugin/plugin.py provides a ``qstash`` fixture, the generated session defines a
# stand-in with the same contract (one session emulator, reset for every test). Once the plugin
# provides it, ``plugin_fixture_available()`` sees it and the session is also run without the
# stand-in, so the figures measure the real fixture. Force either with --fixture plugin|stand-in.
FIXTURE = "qstash"
STAND_IN = '''
import pytest
from qstash_emulator import Emulator


@pytest.fixture(scope="session")
def _bench_session():
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def qstash(_bench_session):
    """Stand-in for the plugin's fixture: the session emulator, reset for this test."""
    _bench_session.reset()
    return _bench_session
'''
# -----------------------------------------------------------------------------------------------

TIMER = """
import json, os, time
import pytest

_times = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started = time.perf_counter()
    yield
    _times[item.name] = time.perf_counter() - started


def pytest_sessionfinish(session):
    with open(os.environ["BENCH_TIMES"], "w") as out:
        json.dump(_times, out)
"""


def plugin_fixture_available() -> bool:
    """Whether the installed pytest plugin (conftest_plugin.plugin) defines ``qstash``."""
    try:
        plugin = importlib.import_module("conftest_plugin.plugin")
    except ImportError:
        return False
    return hasattr(plugin, FIXTURE)


def pytest_session(tests: int, use_plugin: bool) -> dict[str, float]:
    """Per-test wall time (setup + call + teardown) of a generated session, by test name."""
    with tempfile.TemporaryDirectory(prefix="qe-bench-pytest-") as tmp:
        root = Path(tmp)
        (root / "conftest.py").write_text(TIMER + ("" if use_plugin else STAND_IN))
        body = []
        for i in range(tests):
            body.append(f"def test_{i:04d}_without():\n    assert object() is not None\n")
            body.append(f"def test_{i:04d}_with({FIXTURE}):\n    assert {FIXTURE} is not None\n")
        (root / "test_cost.py").write_text("\n\n".join(body))
        times = root / "times.json"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
            capture_output=True,
            cwd=root,
            env={**os.environ, "BENCH_TIMES": str(times)},
            timeout=600,
            check=False,
        )
        if done.returncode != 0 or not times.exists():
            raise RuntimeError(f"generated pytest session failed: {done.stdout.decode()[-2000:]}")
        found: dict[str, float] = json.loads(times.read_text())
        return found


# The conftest's additions: the time each test spent publishing and waiting for delivery.
TYPICAL_CONFTEST = """
CORE = {}


def pytest_unconfigure(config):
    with open(os.environ["BENCH_CORE"], "w") as out:
        json.dump(CORE, out)
"""

TYPICAL_TEST = """
def test_{i:04d}_typical(qstash):
    jobs = qstash.endpoint("/jobs")
    client = qstash.client()
    started = time.perf_counter()
    client.message.publish_json(url=jobs.url, body={{"n": {i}}})
    qstash.wait_for(url=jobs.url)
    CORE["test_{i:04d}_typical"] = time.perf_counter() - started


def test_{i:04d}_empty():
    pass
"""


def typical_costs(tests: int) -> dict[str, float]:
    """Medians (ms) over ``tests`` typical tests: whole test, publish + delivery, the
    fixture's own cost, and an empty test; the first typical test starts the emulator and is
    left out."""
    with tempfile.TemporaryDirectory(prefix="qe-bench-typical-") as tmp:
        root = Path(tmp)
        (root / "conftest.py").write_text(TIMER + TYPICAL_CONFTEST)
        body = "".join(TYPICAL_TEST.format(i=i) for i in range(tests + 1))
        (root / "test_typical.py").write_text("import time\n\nfrom conftest import CORE\n" + body)
        times, core = root / "times.json", root / "core.json"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
            capture_output=True,
            cwd=root,
            env={**os.environ, "BENCH_TIMES": str(times), "BENCH_CORE": str(core)},
            timeout=600,
            check=False,
        )
        if done.returncode != 0 or not times.exists():
            raise RuntimeError(f"generated pytest session failed: {done.stdout.decode()[-2000:]}")
        whole: dict[str, float] = json.loads(times.read_text())
        inside: dict[str, float] = json.loads(core.read_text())
    names = [f"test_{i:04d}_typical" for i in range(1, tests + 1)]
    empty = statistics.median(whole[f"test_{i:04d}_empty"] for i in range(1, tests + 1))
    return {
        "total_ms": statistics.median(whole[n] for n in names) * 1_000,
        "publish_and_delivery_ms": statistics.median(inside[n] for n in names) * 1_000,
        "fixture_ms": statistics.median(whole[n] - inside[n] - empty for n in names) * 1_000,
        "empty_test_ms": empty * 1_000,
    }


def _typical_figure(tests: int) -> Figure:
    from procs import python_child
    from report import Figure

    costs = json.loads(python_child("fixture_cost.py", "typical", str(tests)))
    return Figure(
        "4",
        "fixture's own cost in a typical test",
        "memory",
        costs["fixture_ms"],
        "ms",
        costs["total_ms"],
        "the whole test",
        "< 5 ms",
        costs["fixture_ms"] < 5,
        f"{tests} tests, each a scripted endpoint, qstash.client(), one publish and wait_for; "
        f"medians: the test {costs['total_ms']:.2f} ms, of which the publish and its delivery "
        f"{costs['publish_and_delivery_ms']:.2f} ms; an empty test {costs['empty_test_ms']:.2f} "
        "ms (pytest's own, not counted)",
    )


def _startup(kind: str) -> tuple[float, float]:
    """Seconds from interpreter start-up (after ``site``) to a server accepting connections,
    and the CPU seconds the process used until then (all its threads: what other processes'
    load does not stretch)."""
    if kind == "emulator":
        from qstash_emulator import Emulator

        emulator = Emulator().start()
        took = time.perf_counter() - _T0, time.process_time()
        emulator.stop()
        return took
    import importlib.util

    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    # The emulator's own server helper, loaded by path: importing it through the package
    # would import the whole emulator into the bare baseline. The package is found, not
    # imported, where the emulator would be (the tree ``run.py --against`` measures).
    package = importlib.util.find_spec("qstash_emulator")
    assert package is not None and package.submodule_search_locations
    path = Path(list(package.submodule_search_locations)[0]) / "server" / "serving.py"
    spec = importlib.util.spec_from_file_location("serving", path)
    assert spec is not None and spec.loader is not None
    serving = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serving)

    async def ok(_: object) -> Response:
        return Response(b"ok")

    # Served as the emulator serves: no WebSocket protocol (server/connections.py).
    app = Starlette(routes=[Route("/", ok)])
    server = serving.ThreadedServer(app, lifespan="on", ws="none").start()
    took = time.perf_counter() - _T0, time.process_time()
    server.stop(5)
    return took


def _reset_costs(rounds: int) -> dict[str, float]:
    """Median ``Emulator.reset()`` time, empty and after a test that left one pending message."""
    import httpx

    from qstash_emulator import Emulator

    empty: list[float] = []
    after_publish: list[float] = []
    with Emulator() as emulator, httpx.Client(base_url=emulator.url) as client:
        auth = {"Authorization": f"Bearer {emulator.token}", "Upstash-Delay": "1h"}
        for _ in range(rounds):
            started = time.perf_counter()
            emulator.reset()
            empty.append(time.perf_counter() - started)
            client.post("/v2/publish/http://127.0.0.1:9/hook", headers=auth, content=b"{}")
            started = time.perf_counter()
            emulator.reset()
            after_publish.append(time.perf_counter() - started)
    return {
        "empty_ms": statistics.median(empty) * 1_000,
        "after_publish_ms": statistics.median(after_publish) * 1_000,
    }


def fixture_cost(runs: int, tests: int, fixture: str, quick: bool = False) -> list[Figure]:
    """Scenario 4's figures: start-up, per-test overhead, reset cost."""
    from procs import python_child
    from report import Figure

    starts: dict[str, list[float]] = {"emulator": [], "bare": []}
    cpus: dict[str, list[float]] = {"emulator": [], "bare": []}
    # As on a user's machine: bytecode is written once (pip does it at install) and read after,
    # even where PYTHONDONTWRITEBYTECODE is set for development.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for kind in starts:
        python_child("fixture_cost.py", "startup", kind, env=env)
    for _ in range(runs):
        for kind in starts:
            took, cpu = python_child("fixture_cost.py", "startup", kind, env=env).split()
            starts[kind].append(float(took) * 1_000)
            cpus[kind].append(float(cpu) * 1_000)
    if fixture == "auto" and plugin_fixture_available():
        variants = ["plugin"] if quick else ["plugin", "stand-in"]
    elif fixture == "auto":
        variants = ["stand-in"]
    else:
        variants = [fixture]
    resets = json.loads(python_child("fixture_cost.py", "reset", str(max(20, tests // 3))))
    startup = statistics.median(starts["emulator"])
    startup_cpu = statistics.median(cpus["emulator"])
    return [
        Figure(
            "4",
            "session start-up",
            "memory",
            startup,
            "ms",
            statistics.median(starts["bare"]),
            "bare uvicorn start",
            "< 150 ms",
            startup < 150,
            f"import + Emulator().start() in a fresh interpreter (bytecode compiled, as after "
            f"an install), median of {runs}: "
            + ", ".join(f"{t:.0f}" for t in starts["emulator"])
            + " ms",
        ),
        Figure(
            "4",
            "session start-up, CPU",
            "memory",
            startup_cpu,
            "ms",
            statistics.median(cpus["bare"]),
            "bare uvicorn start",
            "- (load-proof view of the start-up)",
            None,
            "CPU time of the same processes (all threads, interpreter start included) until "
            "the port accepts connections, median of "
            f"{runs}: " + ", ".join(f"{t:.0f}" for t in cpus["emulator"]) + " ms",
        ),
    ] + [
        *(_per_test(tests, variant == "plugin", resets) for variant in variants),
        *([_typical_figure(max(20, tests // 5))] if "plugin" in variants else []),
    ]


def _per_test(tests: int, use_plugin: bool, resets: dict[str, float]) -> Figure:
    from report import Figure

    times = pytest_session(tests, use_plugin)
    with_ = [t * 1_000 for n, t in times.items() if n.endswith("_with")]
    without = [t * 1_000 for n, t in times.items() if n.endswith("_without")]
    overhead = statistics.median(with_) - statistics.median(without)
    first = times.get("test_0000_with", float("nan")) * 1_000
    which = "plugin's qstash" if use_plugin else "stand-in (Emulator + reset)"
    note = (
        f"{tests} tests using the fixture interleaved with {tests} identical ones without it; "
        f"median per test (setup + call + teardown); overhead {overhead:.2f} ms; the first "
        f"test (session start included) took {first:.0f} ms"
    )
    if not use_plugin:
        note += (
            f"; Emulator.reset() alone {resets['empty_ms']:.2f} ms empty, "
            f"{resets['after_publish_ms']:.2f} ms after a publish"
        )
    return Figure(
        "4",
        f"per-test overhead, {which}",
        "memory",
        statistics.median(with_),
        "ms",
        statistics.median(without),
        "same test, no fixture",
        "overhead < 2 ms",
        overhead < 2,
        note,
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "startup":
        print(*_startup(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "reset":
        print(json.dumps(_reset_costs(int(sys.argv[2]))))
    elif len(sys.argv) == 3 and sys.argv[1] == "typical":
        print(json.dumps(typical_costs(int(sys.argv[2]))))
    else:
        sys.exit("usage: fixture_cost.py startup emulator|bare | reset N | typical N")
