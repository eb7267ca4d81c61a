"""HTTP handlers, one module per API resource, each declaring its routes (``_declare``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from . import (
    batch,
    dlq,
    flow_control,
    health,
    inspect,
    keys,
    logs,
    messages,
    openapi,
    publish,
    queues,
    schedules,
    url_groups,
    waits,
    workflow_dlq,
    workflows,
)
from ._declare import Operation, route_of

if TYPE_CHECKING:
    from ..server.runtime import Runtime

__all__ = ["all_operations", "all_routes"]

_MODULES = (
    publish,
    messages,
    logs,
    dlq,
    keys,
    batch,
    queues,
    url_groups,
    schedules,
    flow_control,
    workflows,
    waits,
    workflow_dlq,
    health,
    inspect,
    openapi,
)


def all_operations() -> list[Operation]:
    """Every declared operation, in matching order."""
    return [op for module in _MODULES for op in module.api.declared]


def all_routes(runtime: Runtime) -> list[BaseRoute]:
    """Every API route, in matching order, each authenticating its caller first and calling
    its handler with the runtime's parts it names."""
    return [route_of(op, runtime) for op in all_operations()]
