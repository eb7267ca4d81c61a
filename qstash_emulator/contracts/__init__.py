"""Contracts: how an app uses QStash, recorded to a file that CI diffs and replays.

``Recorder`` hears an emulator's publishes, schedules and workflow runs; ``build`` turns
what it heard into a contract document (``dumps``/``load`` for the file); ``compare`` says
how a run differs from a committed contract; ``replay`` delivers each entry's exemplar to a
running consumer as QStash would. docs/contracts.md describes the file and the commands.
"""

from __future__ import annotations

from ._compare import compare
from ._document import ContractError, build, dumps, entry_key, label, load, loads
from ._record import Recorder, Usage
from ._replay import Answer, Attempts, ReplayError, Report, Result, Target, replay, targets

__all__ = [
    "Answer",
    "Attempts",
    "ContractError",
    "Recorder",
    "ReplayError",
    "Report",
    "Result",
    "Target",
    "Usage",
    "build",
    "compare",
    "dumps",
    "entry_key",
    "label",
    "load",
    "loads",
    "replay",
    "targets",
]
