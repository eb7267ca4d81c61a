"""The teardown checks: what a test left behind, found in one trip to the server, then purged.

A test fails at teardown when it leaves messages pending or retrying, dead letters nobody
looked at, scripted answers and API faults never used, or workflow runs that did not end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qstash_emulator.testing import Emulator, Fault, Waiting, docs_path

from ._endpoints import Endpoint
from ._matching import Deliveries
from ._options import Options
from ._runs import WorkflowRun, run_records, unfinished_text

__all__ = ["Leftovers", "failure_text", "gather", "report"]


Leftovers = tuple[list[Waiting], list[dict[str, Any]], list[WorkflowRun]]


async def gather(
    emulator: Emulator, user_id: str, options: Options, failed: bool, purge_after: bool
) -> Leftovers:
    """Let due work finish, read what the checks need, and purge the user if asked."""
    inspector = emulator.inspector
    waiting: list[Waiting] = []
    letters: list[dict[str, Any]] = []
    runs: list[WorkflowRun] = []
    if options.checks:
        if emulator.in_flight or await emulator.has_pending(user_id):
            await emulator.idle()
            if options.check("pending"):
                waiting = await inspector.waiting(user_id)
        # Only a failed message makes a dead letter, and the test saw every attempt.
        if failed and options.check("dead_letters"):
            letters = await inspector.dead_letters(user_id)
        if options.check("runs"):
            runs = [r for r in await run_records(emulator, user_id) if not r.finished]
    if purge_after:
        await emulator.purge_user(user_id)
    return waiting, letters, runs


def report(
    options: Options,
    now: int,
    leftovers: Leftovers,
    seen_dead_letters: set[str],
    endpoints: Iterable[Endpoint],
    faults: Iterable[Fault],
    deliveries: Deliveries,
) -> list[str]:
    """One paragraph per failed check."""
    waiting, letters, runs = leftovers
    last = {d.message_id: d for d in deliveries}
    problems = []
    if waiting:
        lines = []
        for w in waiting:
            tried = last.get(w.message_id)
            lines.append(
                "  " + w.describe(now) + (f"; last attempt: {tried.result()}" if tried else "")
            )
        problems.append(
            f"{len(waiting)} message(s) still pending (deliver them with "
            "qstash.run_until_idle(), or cancel them):\n" + "\n".join(lines)
        )
    unseen = [e for e in letters if e["dlqId"] not in seen_dead_letters]
    if unseen:
        lines = []
        for entry in unseen:
            tried = last.get(entry["messageId"])
            ended = tried.result() if tried else f"status {entry.get('responseStatus')}"
            lines.append(f"  {entry['messageId']} {entry.get('url', '')} (last {ended})")
        problems.append(
            f"{len(unseen)} dead letter(s) nobody looked at (check them with "
            "qstash.assert_dead_lettered(...) or qstash.dead_letters()):\n" + "\n".join(lines)
        )
    if runs:
        problems.append(unfinished_text(runs))
    if options.check("unused_responses"):
        lines = [f"  {e.url}: {', '.join(e.unused)}" for e in endpoints if e.unused]
        lines += [f"  API fault: {f.describe()}" for f in faults if f.left is not None]
        if lines:
            problems.append("scripted responses never used:\n" + "\n".join(lines))
    return problems


def failure_text(problems: list[str]) -> str:
    return (
        "qstash teardown checks failed:\n"
        + "\n".join(problems)
        + "\nOpt out with @pytest.mark.qstash(checks=False) (or checks=(...) to keep "
        f"some); see 'Teardown checks' in {docs_path('README.md')}"
    )
