"""Figures, the printed table and bench/RESULTS.md."""

from __future__ import annotations

import datetime
import math
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from procs import ROOT


@dataclass
class Figure:
    """One measured number beside the baseline it is judged against."""

    scenario: str
    name: str
    backend: str
    value: float
    unit: str
    baseline: float | None
    baseline_name: str
    target: str
    passed: bool | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline or math.isnan(self.value):
            return None
        return self.value / self.baseline


def num(value: float | None, unit: str = "") -> str:
    if value is None or math.isnan(value):
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if value else "0"
    return f"{text} {unit}".strip()


def _verdict(passed: bool | None) -> str:
    return "-" if passed is None else "PASS" if passed else "FAIL"


def rows(figures: list[Figure]) -> list[list[str]]:
    out = [["#", "figure", "backend", "value", "baseline", "ratio", "target", "result"]]
    for f in figures:
        ratio = f.ratio
        out.append(
            [
                f.scenario,
                f.name,
                f.backend,
                num(f.value, f.unit),
                f"{num(f.baseline, f.unit)} ({f.baseline_name})" if f.baseline_name else "-",
                "-" if ratio is None else f"{ratio:.2f}",
                f.target,
                _verdict(f.passed),
            ]
        )
    return out


def table(figures: list[Figure]) -> str:
    """A plain-text table for the terminal."""
    return text_table(rows(figures))


def markdown(figures: list[Figure]) -> str:
    return markdown_table(rows(figures))


def text_table(data: list[list[str]]) -> str:
    """``data`` (a header row first) in aligned columns."""
    widths = [max(len(r[i]) for r in data) for i in range(len(data[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in data]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(data: list[list[str]]) -> str:
    """``data`` (a header row first) as a Markdown table."""
    lines = ["| " + " | ".join(data[0]) + " |", "|" + "---|" * len(data[0])]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in data[1:]]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """Date, cores, architecture, CPU, and the parts of the stack that change the numbers."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, cwd=ROOT, check=False
    ).stdout.decode()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "qstash_emulator"],
        capture_output=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores (nproc), {platform.machine()}, {cpu}".rstrip(", "),
        "python": platform.python_version(),
        "commit": (commit.strip() or "?")
        + (" + uncommitted changes in qstash_emulator/" if dirty else ""),
    }


def notes_of(figures: list[Figure]) -> list[str]:
    return [f"- {f.scenario} {f.name} ({f.backend}): {f.note}" for f in figures if f.note]


BY_HAND = "## Big bodies"


def write_results(
    path: Path, figures: list[Figure], info: dict[str, str], mode: str, command: str
) -> None:
    passed = sum(f.passed is True for f in figures)
    failed = sum(f.passed is False for f in figures)
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}` ({mode} mode). Ratios compare each figure with a baseline",
        "measured in the same invocation on the same machine; absolute numbers move with the",
        "machine's load, the ratios much less.",
        "",
        *(f"- {key}: {value}" for key, value in info.items()),
        f"- targets: {passed} met, {failed} missed",
        "",
        markdown(figures),
        "",
        "## Notes",
        "",
        *notes_of(figures),
        "",
    ]
    replace_top(path, lines)


def replace_top(path: Path, lines: list[str]) -> None:
    """Write ``lines`` as the top of ``path``: the sections written by hand (from
    ``BY_HAND`` on: scenarios run by hand, profiles read) stay below them."""
    old = path.read_text() if path.exists() else ""
    at = old.find("\n" + BY_HAND)
    path.write_text("\n".join(lines) + (old[at:] if at >= 0 else ""))
