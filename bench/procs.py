"""The processes a benchmark runs: the emulator's CLI, the baseline servers, redis-server.

Every one listens on a free loopback port, logs to a file (never a pipe that could fill),
and is stopped by its own pid.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOGS = Path(tempfile.mkdtemp(prefix="qe-bench-"))

# The source tree whose qstash_emulator (and conftest_plugin) the emulator processes and the
# helper scripts run: this checkout, or a baseline commit's checkout (``python bench/run.py
# --against REF``). The bench's own code always comes from this checkout.
_tree = ROOT


@contextmanager
def tree(path: Path) -> Iterator[None]:
    """Run the emulator from the package in ``path`` inside the block."""
    global _tree
    before, _tree = _tree, path
    try:
        yield
    finally:
        _tree = before


def tree_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the current tree first on the path.

    Children also start in the tree (``python -m`` puts the working directory first), so the
    package found there wins over the editable install of this checkout.
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(_tree), *filter(None, [env.get("PYTHONPATH")])])
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used (Linux /proc): immune to other processes' load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ThreadTimes:
    """Where one thread's wall time went over a window (Linux schedstat): on a CPU, runnable
    but waiting for one (other processes had it), or asleep (nothing to do: waiting on a
    socket, a timer, a lock). Only ``asleep`` is a wait of the process's own."""

    name: str
    on_cpu: float
    waiting: float
    asleep: float

    @property
    def busy(self) -> float:
        """Share of the time it could have run that it ran: load-proof, unlike ``on_cpu``."""
        ran = self.on_cpu + self.asleep
        return self.on_cpu / ran if ran > 0 else float("nan")

    def text(self) -> str:
        return (
            f"on a CPU {100 * self.on_cpu:.0f} %, waiting for a CPU {100 * self.waiting:.0f} %, "
            f"asleep {100 * self.asleep:.0f} %"
        )


def _schedstat(pid: int) -> dict[int, tuple[str, int, int]]:
    """Each thread of ``pid``: (name, ns on a CPU, ns runnable waiting for one)."""
    out: dict[int, tuple[str, int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            run, wait, _ = (task / "schedstat").read_text().split()
            name = (task / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # the thread ended, or schedstat is off
        out[int(task.name)] = (name, int(run), int(wait))
    return out


class SchedWindow:
    """Thread times of ``pid`` between :meth:`start` and :meth:`stop`, main thread first."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._before: dict[int, tuple[str, int, int]] = {}
        self._started = 0.0

    def start(self) -> None:
        self._before, self._started = _schedstat(self.pid), time.monotonic()

    def stop(self) -> list[ThreadTimes]:
        after, seconds = _schedstat(self.pid), time.monotonic() - self._started
        times: list[ThreadTimes] = []
        for tid in sorted(after, key=lambda t: (t != self.pid, t)):
            name, run, wait = after[tid]
            _, run0, wait0 = self._before.get(tid, (name, 0, 0))
            on_cpu = (run - run0) / 1e9 / seconds
            waiting = (wait - wait0) / 1e9 / seconds
            label = "event loop" if tid == self.pid else f"thread {name}"
            times.append(ThreadTimes(label, on_cpu, waiting, max(0.0, 1 - on_cpu - waiting)))
        return times


class Proc:
    """A child process listening on ``port``; ``url`` is its base URL."""

    def __init__(self, name: str, argv: list[str], port: int, timeout: float = 20) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = LOGS / f"{name}-{port}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=_tree,
                env={**tree_env(), "PYTHONUNBUFFERED": "1"},
            )
        self._wait_listening(timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on {self.port} within {timeout}s")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.stop()


def emulator(redis_url: str | None = None, *extra: str, name: str = "emulator") -> Proc:
    """``python -m qstash_emulator dev``, exactly as a user starts it; ``extra`` options."""
    port = free_port()
    argv = [sys.executable, "-m", "qstash_emulator", "dev", "--port", str(port), *extra]
    if redis_url:
        argv += ["--redis-url", redis_url]
    return Proc(name, argv, port)


def baseline_server(kind: str) -> Proc:
    """``ceiling`` (bare Starlette publish endpoint), ``forwarder`` (accept and forward, no
    state) or ``receiver`` (bare ASGI destination)."""
    port = free_port()
    return Proc(kind, [sys.executable, str(HERE / "servers.py"), kind, "--port", str(port)], port)


def python_child(
    script: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> str:
    """Run a helper script in a fresh interpreter; its stdout."""
    done = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        capture_output=True,
        cwd=_tree,
        timeout=timeout,
        check=False,
        env=tree_env(env),
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
    return done.stdout.decode()


class Redis(Proc):
    """A throwaway ``redis-server`` on a free loopback port, nothing persisted."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: apt-get update && apt-get install -y redis-server"
            )
        port = free_port()
        self.dir = tempfile.mkdtemp(prefix="qe-bench-redis-", dir=LOGS)
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", self.dir]
        super().__init__("redis", argv, port)
        self.redis_url = f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)
