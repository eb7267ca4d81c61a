"""The pytest plugin for qstash-emulator: the ``qstash`` fixture and its records.

Names are imported lazily: pytest loads this package in every run, and the emulator should
cost nothing until a test asks for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._deliveries import Delivery
    from ._endpoints import Endpoint, Reply, reply
    from ._fixture import QStashFixture
    from ._matching import Deliveries
    from ._options import Options
    from ._pending import PendingMessage
    from ._runs import RunStep, WorkflowRun

__all__ = [
    "Deliveries",
    "Delivery",
    "Endpoint",
    "Options",
    "PendingMessage",
    "QStashFixture",
    "Reply",
    "RunStep",
    "WorkflowRun",
    "reply",
]

_HOMES = {
    "Deliveries": "._matching",
    "Delivery": "._deliveries",
    "Endpoint": "._endpoints",
    "Options": "._options",
    "PendingMessage": "._pending",
    "QStashFixture": "._fixture",
    "Reply": "._endpoints",
    "RunStep": "._runs",
    "WorkflowRun": "._runs",
    "reply": "._endpoints",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)
