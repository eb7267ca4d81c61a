"""HTTP handlers, one module per API resource."""

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
from ._common import authenticating

__all__ = ["all_routes"]


def all_routes() -> list[BaseRoute]:
    """Every API route, in matching order, each authenticating its caller first."""
    routes = [
        *publish.routes,
        *messages.routes,
        *logs.routes,
        *dlq.routes,
        *keys.routes,
        *batch.routes,
        *queues.routes,
        *topics.routes,
        *schedules.routes,
        *flow_control.routes,
        *workflows.routes,
        *waits.routes,
        *workflow_dlq.routes,
        *health.routes,
        *inspect.routes,
        *openapi.routes,
    ]
    return [authenticating(route) for route in routes]
