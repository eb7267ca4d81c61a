"""py-spy attached to the emulator's process, and a summary of where its CPU time went.

py-spy samples from outside (``--nonblocking``: the emulator is never paused), so the
emulator runs its ordinary code; idle samples (waiting in the event loop's poll) are left
out, so percentages are shares of the time the emulator was busy.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from procs import SchedWindow, ThreadTimes

RATE = 200  # samples per second

_LOOP = "asyncio + event loop (uvloop runs inside Runner.run)"

# Layers, innermost first wins for the exclusive breakdown: (label, path prefixes or functions).
# py-spy names files relative to their sys.path entry: "fakeredis/_commands.py",
# "asyncio/base_events.py", "qstash_emulator/store/core.py".
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("JSON encode/decode (_json, orjson, json)", ("qstash_emulator/_json.py", "json/")),
    ("JWT signing (_signing, PyJWT)", ("qstash_emulator/delivery/signing.py", "jwt/")),
    ("log rows (make_row/log_row)", ("qstash_emulator/model/views.py", "make_row", "log_row")),
    (
        "random ids (new_id, secrets, random)",
        ("new_id", "qstash_emulator/model/ids.py", "secrets.py", "random.py"),
    ),
    ("Message record/from_record", ("qstash_emulator/model/message.py",)),
    (
        "publish header parsing (_headers)",
        ("qstash_emulator/model/headers.py", "qstash_emulator/model/header_values.py"),
    ),
    ("destination parsing", ("qstash_emulator/model/destination.py",)),
    ("fakeredis", ("fakeredis/", "sortedcontainers/")),
    ("redis-py client", ("redis/",)),
    ("aiohttp client (deliveries)", ("aiohttp/", "multidict/", "yarl/", "propcache/")),
    ("httpx (in-process mounts)", ("httpx/", "httpcore/")),
    ("uvicorn + httptools (HTTP server)", ("uvicorn/", "httptools/")),
    ("starlette (routing, request, response)", ("starlette/",)),
    ("store (own code)", ("qstash_emulator/store/",)),
    (
        "engine + retry (own code)",
        ("qstash_emulator/delivery/engine.py", "qstash_emulator/delivery/retry.py"),
    ),
    ("publisher (own code)", ("qstash_emulator/services/publisher.py",)),
    ("transport (own code)", ("qstash_emulator/delivery/transport.py",)),
    ("API handlers (own code)", ("qstash_emulator/api/",)),
    (
        "middleware (own code)",
        (
            "qstash_emulator/api/_middleware.py",
            "qstash_emulator/api/_browser_guard.py",
            "qstash_emulator/server/app.py",
        ),
    ),
    ("other emulator code", ("qstash_emulator/",)),
    (_LOOP, ("asyncio/", "uvloop/")),
    ("logging", ("logging/",)),
]
# Frames at the bottom of every stack: not a layer. Runner.run is also where the C event loop
# (uvloop) itself spends its time, so a sample with nothing above it is the event loop's.
_ROOTS = (
    "qstash_emulator/server/cli.py",
    "qstash_emulator/__main__.py",
    "<frozen runpy>",
    "uvicorn/server.py",
    "uvicorn/_compat.py",
    "asyncio/runners.py",
)

# The coarse view: walking from the leaf up, a sample goes to the first frame's group; the
# standard library (asyncio, socket writes, json) is transparent, so the store's share includes
# the event-loop and socket work redis-py does on its behalf.
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    (
        "state store: redis-py (+ fakeredis in memory)",
        ("redis/", "fakeredis/", "sortedcontainers/"),
    ),
    ("delivery HTTP client: aiohttp", ("aiohttp/", "yarl/", "multidict/", "propcache/")),
    ("signing: JWT", ("qstash_emulator/delivery/signing.py", "jwt/")),
    ("random ids", ("qstash_emulator/model/ids.py",)),
    ("JSON", ("qstash_emulator/_json.py",)),
    (
        "request parsing: headers, destination",
        ("qstash_emulator/model/headers.py", "qstash_emulator/model/destination.py"),
    ),
    (
        "HTTP server: uvicorn, httptools, starlette",
        ("uvicorn/protocols", "uvicorn/middleware", "starlette/"),
    ),
    ("emulator's own code", ("qstash_emulator/",)),
]
_OTHER_GROUP = "event loop (uvloop) and the rest"


def _group(frames: list[str]) -> str:
    for frame in reversed(frames):
        match = _FRAME.match(frame)
        path = match["path"] if match else ""
        if path.startswith(_ROOTS):
            continue
        for label, prefixes in GROUPS:
            if path.startswith(prefixes):
                return label
    return _OTHER_GROUP


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>.*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    return shutil.which("py-spy")


@dataclass
class Profiler:
    """A running ``py-spy record``; :meth:`finish` stops it and writes the summary."""

    proc: asyncio.subprocess.Process
    raw: Path
    summary: Path
    title: str
    started: float
    window: SchedWindow

    @classmethod
    async def attach(cls, pid: int, raw: Path, summary: Path, title: str) -> Profiler:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("py-spy is not installed: pip install py-spy")
        summary.parent.mkdir(parents=True, exist_ok=True)
        argv = [binary, "record", "--pid", str(pid), "--rate", str(RATE), "--nonblocking"]
        argv += ["--format", "raw", "-o", str(raw)]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        await asyncio.sleep(0.3)  # let it attach before the load starts
        window = SchedWindow(pid)
        window.start()
        return cls(proc, raw, summary, title, time.monotonic(), window)

    async def finish(self) -> None:
        seconds = time.monotonic() - self.started
        threads = self.window.stop()
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self.raw.exists():
            text = summarize(self.raw.read_text(), seconds, threads)
            self.summary.write_text(f"# {self.title}\n\n{text}")


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if f]


def _layer(frame: str) -> str | None:
    match = _FRAME.match(frame)
    func, path = (match["func"], match["path"]) if match else (frame, "")
    if path.startswith(_ROOTS):
        return None
    for label, patterns in LAYERS:
        for pattern in patterns:
            if pattern.endswith((".py", "/", "_")) and path.startswith(pattern):
                return label
            if "/" not in pattern and not pattern.endswith(".py") and pattern in func:
                return label
            if pattern.endswith(".py") and "/" not in pattern and path.endswith("/" + pattern):
                return label
    return None


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["path"]
    for anchor in ("site-packages/", "qstash_emulator/", "python3.11/"):
        if anchor in path:
            path = path.split(anchor, 1)[1]
            if anchor == "qstash_emulator/":
                path = "qstash_emulator/" + path
            break
    return f"{match['func']} ({path})"


def summarize(raw: str, seconds: float, threads: list[ThreadTimes] | None = None) -> str:
    """Exclusive time per layer, inclusive time per layer, hottest functions."""
    exclusive: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    own_inclusive: Counter[str] = Counter()
    grouped: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        total += count
        leaf[_short(frames[-1])] += count
        grouped[_group(frames)] += count
        layer = next((lab for f in reversed(frames) if (lab := _layer(f))), None)
        exclusive[layer or (_LOOP if "asyncio/runners.py" in frames[-1] else "other")] += count
        for label in {lab for f in frames if (lab := _layer(f))}:
            inclusive[label] += count
        for name in {_short(f) for f in frames if "(qstash_emulator/" in f and _layer(f)}:
            own_inclusive[name] += count
    if not total:
        return "no samples (the process was idle or py-spy could not attach)\n"
    busy = total / (seconds * RATE) if seconds else float("nan")

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f} %"

    # py-spy's count is no measure of busy: it counts a thread waiting for a CPU as busy,
    # counts every thread, and misses samples when it is starved itself (on 2 cores with the
    # load generator and the receiver, it was: "busy 73 %" while the emulator used a core).
    out = [
        f"{total} samples at {RATE} Hz over {seconds:.1f}s ({100 * busy:.0f} % of the "
        "expected count; py-spy counts waiting for a CPU as busy and can skip samples when "
        "starved, so the kernel's figures below measure busy).",
        "",
        *(
            f"- {t.name}: {t.text()} of the wall time"
            for t in threads or []
            if t is threads[0] or t.on_cpu >= 0.005
        ),
        "",
        "Where the time goes (each sample in the group of its innermost non-stdlib frame):",
        "",
        *(f"    {pct(n)}  {label}" for label, n in grouped.most_common()),
        "",
        "Exclusive (each sample counted once, in the innermost layer on its stack):",
        "",
        *(f"    {pct(n)}  {label}" for label, n in exclusive.most_common()),
        "",
        "Inclusive (a layer and everything it calls):",
        "",
        *(f"    {pct(n)}  {label}" for label, n in inclusive.most_common()),
        "",
        "Hottest emulator functions, inclusive:",
        "",
        *(f"    {pct(n)}  {name}" for name, n in own_inclusive.most_common(20)),
        "",
        "Hottest leaf functions (self time):",
        "",
        *(f"    {pct(n)}  {name}" for name, n in leaf.most_common(20)),
        "",
    ]
    return "\n".join(out)


_GROUP_LINE = re.compile(r"^\s+([\d.]+) %  (.+)$", re.MULTILINE)


def index(folder: Path) -> str:
    """One table of every profile's coarse groups, side by side (folder/SUMMARY.md)."""
    shares: dict[str, dict[str, float]] = {}
    names: list[str] = []
    for md in sorted(folder.glob("[0-9]*.md")):
        text = md.read_text()
        if "Where the time goes" not in text:
            continue
        names.append(md.stem)
        part = text.split("Where the time goes", 1)[1].split("Exclusive", 1)[0]
        for match in _GROUP_LINE.finditer(part):
            shares.setdefault(match[2], {})[md.stem] = float(match[1])
    ordered = sorted(shares.items(), key=lambda item: -sum(item[1].values()))
    lines = [
        "# Where the emulator's CPU goes",
        "",
        "Share of the emulator process's busy samples (py-spy) per scenario; each sample is",
        "counted in the group of its innermost non-standard-library frame, so the store's share",
        "includes the asyncio and socket work done for it. Details: the per-scenario files here.",
        "",
        "| group | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
        *(
            f"| {label} | " + " | ".join(f"{row.get(n, 0):.0f} %" for n in names) + " |"
            for label, row in ordered
        ),
        "",
    ]
    summary = "\n".join(lines)
    (folder / "SUMMARY.md").write_text(summary)
    return summary


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: profiler.py FILE.raw SECONDS   (re-summarize a recorded profile)")
    print(summarize(Path(sys.argv[1]).read_text(), float(sys.argv[2])))
