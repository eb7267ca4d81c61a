"""What a test suite imports from the pytest plugin: the fixture's type, its records, ``reply``.

``from qstash_emulator.pytest import QStashFixture, reply``. The plugin itself is registered
with pytest when the package is installed (the ``qstash`` fixture needs no import); its
modules live in ``conftest_plugin``, whose names may change. Names are imported lazily:
pytest loads the plugin in every run, and the emulator should cost nothing until a test asks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest_plugin._deliveries import Delivery
    from conftest_plugin._endpoints import Endpoint, Reply, reply
    from conftest_plugin._fixture import QStashFixture
    from conftest_plugin._matching import Deliveries
    from conftest_plugin._options import Options
    from conftest_plugin._pending import PendingMessage
    from conftest_plugin._runs import RunStep, WorkflowRun

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
    "Deliveries": "conftest_plugin._matching",
    "Delivery": "conftest_plugin._deliveries",
    "Endpoint": "conftest_plugin._endpoints",
    "Options": "conftest_plugin._options",
    "PendingMessage": "conftest_plugin._pending",
    "QStashFixture": "conftest_plugin._fixture",
    "Reply": "conftest_plugin._endpoints",
    "RunStep": "conftest_plugin._runs",
    "WorkflowRun": "conftest_plugin._runs",
    "reply": "conftest_plugin._endpoints",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(__all__)
