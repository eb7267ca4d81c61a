"""Upstash Workflow: runs of durable functions whose every step is a message."""

from __future__ import annotations

from ._logs import STATES, RunFilter, run_events, run_log, select_runs
from ._model import CallType, Run, RunState, RunStep
from ._runs import Runs
from ._store import RunStore

__all__ = [
    "STATES",
    "CallType",
    "Run",
    "RunFilter",
    "RunState",
    "RunStep",
    "RunStore",
    "Runs",
    "run_events",
    "run_log",
    "select_runs",
]
