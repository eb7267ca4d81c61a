"""Before and after in one run: the same scenarios on a baseline commit and on this tree.

``python bench/run.py --against REF`` checks REF out into a temporary git worktree and runs
the chosen scenarios on it and on this checkout in turns (before, after, after, before, ...:
each side goes first as often as the other, so a load that builds up or fades over the run
weighs on both). The bench's own code (load generators, receivers, figures) is this
checkout's for both sides; only the emulator's package differs, found first on the path of
every process the bench starts. Both sides share this checkout's installed dependencies.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from procs import ROOT
from report import Figure, markdown_table, num, text_table

__all__ = ["Pair", "checkout", "pair_up", "pairs_markdown", "pairs_notes", "pairs_table"]


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[tuple[Path, str]]:
    """``ref`` checked out (detached) in a temporary worktree; its path and short hash,
    removed afterwards."""
    short = _git("rev-parse", "--short", f"{ref}^{{commit}}")
    parent = Path(tempfile.mkdtemp(prefix="qe-bench-before-"))
    path = parent / short
    _git("worktree", "add", "--detach", "--quiet", str(path), short)
    try:
        yield path, short
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)
        shutil.rmtree(parent, ignore_errors=True)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.decode().strip()}")
    return done.stdout.decode().strip()


@dataclass
class Pair:
    """One figure, each round's value before and after, and each against its own baseline."""

    scenario: str
    name: str
    backend: str
    unit: str
    baseline_name: str
    target: str
    before: list[Figure]
    after: list[Figure]

    @staticmethod
    def _median(values: list[float]) -> float:
        known = [v for v in values if not math.isnan(v)]
        return statistics.median(known) if known else float("nan")

    def value(self, side: list[Figure]) -> float:
        return self._median([f.value for f in side])

    def ratio(self, side: list[Figure]) -> float | None:
        ratios = [f.ratio for f in side if f.ratio is not None]
        return statistics.median(ratios) if ratios else None

    @property
    def change(self) -> float | None:
        before, after = self.value(self.before), self.value(self.after)
        if not before or math.isnan(before) or math.isnan(after):
            return None
        return after / before

    @property
    def passed(self) -> bool | None:
        """The target met in most rounds after (None when the figure has no target)."""
        verdicts = [f.passed for f in self.after if f.passed is not None]
        return None if not verdicts else sum(verdicts) * 2 > len(verdicts)


def pair_up(before: list[list[Figure]], after: list[list[Figure]]) -> list[Pair]:
    """The figures of every round, matched by scenario, name and backend, in run order."""
    pairs: dict[tuple[str, str, str], Pair] = {}
    for side, runs in (("before", before), ("after", after)):
        for figures in runs:
            for f in figures:
                key = (f.scenario, f.name, f.backend)
                if key not in pairs:
                    pairs[key] = Pair(
                        f.scenario, f.name, f.backend, f.unit, f.baseline_name, f.target, [], []
                    )
                getattr(pairs[key], side).append(f)
    return list(pairs.values())


def _rows(pairs: list[Pair]) -> list[list[str]]:
    out = [
        [
            "#",
            "figure",
            "backend",
            "before",
            "after",
            "after / before",
            "before / its baseline",
            "after / its baseline",
            "target",
            "after: result",
        ]
    ]
    for p in pairs:
        change = p.change
        rb, ra = p.ratio(p.before), p.ratio(p.after)
        out.append(
            [
                p.scenario,
                p.name,
                p.backend,
                num(p.value(p.before), p.unit),
                num(p.value(p.after), p.unit),
                "-" if change is None else f"{change:.2f}",
                "-" if rb is None else f"{rb:.2f}",
                "-" if ra is None else f"{ra:.2f}",
                p.target,
                "-" if p.passed is None else "PASS" if p.passed else "FAIL",
            ]
        )
    return out


def pairs_table(pairs: list[Pair]) -> str:
    """A plain-text table for the terminal."""
    return text_table(_rows(pairs))


def pairs_markdown(pairs: list[Pair]) -> str:
    return markdown_table(_rows(pairs))


def pairs_notes(pairs: list[Pair]) -> list[str]:
    """Each figure's rounds, then the last round's note of each side."""
    out: list[str] = []
    for p in pairs:
        rounds = "; ".join(
            f"{side} " + ", ".join(num(f.value, p.unit) for f in figures)
            for side, figures in (("before", p.before), ("after", p.after))
        )
        baseline = f" (baselines: {p.baseline_name})" if p.baseline_name else ""
        out.append(f"- {p.scenario} {p.name} ({p.backend}): rounds {rounds}{baseline}")
        for side, figures in (("before", p.before), ("after", p.after)):
            if figures and figures[-1].note:
                out.append(f"  - {side}, last round: {figures[-1].note}")
    return out
