"""HTTP handlers, one module per API resource, each declaring its routes (``_declare``)."""

from __future__ import annotations

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
    topics,
    waits,
    workflow_dlq,
    workflows,
)
from ._declare import route_of

__all__ = ["all_routes"]

_MODULES = (
    publish,
    messages,
    logs,
    dlq,
    keys,
    batch,
    queues,
    topics,
    schedules,
    flow_control,
    workflows,
    waits,
    workflow_dlq,
    health,
    inspect,
    openapi,
)


def all_routes() -> list[BaseRoute]:
    """Every API route, in matching order, each authenticating its caller first."""
    return [route_of(op) for module in _MODULES for op in module.api.declared]
