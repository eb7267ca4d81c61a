"""Upstash Workflow: runs of durable functions whose every step is a message."""

from __future__ import annotations

from ._delivery import RunMessages
from ._dlq import DlqFilter, RunDlq
from ._logs import STATES, RunFilter, run_events, run_log, select_runs
from ._model import CallType, Run, RunState, RunStep
from ._runs import Runs
from ._store import RunStore
from ._waits import Waits

__all__ = [
    "STATES",
    "DlqFilter",
    "RunDlq",
    "CallType",
    "Run",
    "RunFilter",
    "RunMessages",
    "RunState",
    "RunStep",
    "RunStore",
    "Runs",
    "Waits",
    "run_events",
    "run_log",
    "select_runs",
]
