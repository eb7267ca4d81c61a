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

__all__ = [
    "Deliveries",
    "Delivery",
    "Endpoint",
    "Options",
    "PendingMessage",
    "QStashFixture",
    "Reply",
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
    "reply": "._endpoints",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)
