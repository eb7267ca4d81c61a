"""The dashboard: a page served at ``/`` that shows one user's messages, logs, dead letters,
schedules, queues, URL groups, flow-control keys and signing keys, live, and acts on them.

Plain HTML, CSS and JavaScript in ``static/``: no build step, nothing fetched from elsewhere.
"""

from __future__ import annotations

from ._routes import routes

__all__ = ["routes"]
