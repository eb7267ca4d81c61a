"""URL groups ("topics"): named sets of endpoints a publish fans out to.

A group is stored (``store.url_groups``) as JSON
``{"createdAt", "updatedAt", "endpoints": [{"url", "name"?}], "headers": {Name: [values]}}``.

Default headers (``PATCH /v2/topics/{name}``) are publish-family headers: ``Upstash-*`` names
configure the message (``Upstash-Retries``, ``Upstash-Header-Forward`` ...), any other name is
sent to the endpoints as if it had been given as ``Upstash-Forward-<Name>``. They are merged
into a publish's own headers before validation, and the publish's own headers win.

The rules: docs/behaviour.md#url-groups.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from .._errors import BadRequest, NotFound
from ..delivery.clock import Clock
from ..model.destination import is_url, validate_name, validate_url
from ..model.headers import H, parse_publish
from ..model.sendable import canonical
from ..server.config import Settings
from ..store.core import Store
from .loops import Loops
from .publisher import Endpoint
from .quotas import require_room

__all__ = ["UrlGroups", "merge_defaults"]

Items = list[tuple[str, str]]


def _default_items(headers: dict[str, list[str]]) -> Items:
    """Stored default headers as request header items, plain names turned into forwards."""
    items: Items = []
    for name, values in headers.items():
        lower = name.lower()
        key = name if lower.startswith("upstash-") or lower == H.CONTENT_TYPE else None
        items.extend((key or "Upstash-Forward-" + name, value) for value in values)
    return items


def merge_defaults(defaults: Items, items: Iterable[tuple[str, str]]) -> Items:
    """A group's default header items under a publish's own; the publish's names win."""
    own = list(items)
    given = {name.lower() for name, _ in own}
    return [(n, v) for n, v in defaults if n.lower() not in given] + own


def _endpoint_view(endpoint: dict[str, str]) -> dict[str, str]:
    view = {"url": endpoint["url"]}
    if endpoint.get("name"):
        view["name"] = endpoint["name"]
    return view


class UrlGroups:
    """Storage for URL groups, and the resolver the publisher fans out with."""

    def __init__(
        self, store: Store, settings: Settings, clock: Clock, loops: Loops | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self.loops = loops

    @property
    def _lock(self) -> asyncio.Lock:
        """Read-modify-write of a group must not interleave with another request's (one lock
        per event loop: an Emulator restarted in a new loop keeps this object)."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            self._locks = {loop: (lock := asyncio.Lock())}
        return lock

    @staticmethod
    def view(name: str, group: dict[str, Any]) -> dict[str, Any]:
        """The URLGroup JSON (every key the Python SDK indexes)."""
        view: dict[str, Any] = {
            "name": name,
            "createdAt": group["createdAt"],
            "updatedAt": group["updatedAt"],
            "endpoints": [_endpoint_view(e) for e in group["endpoints"]],
        }
        if group.get("headers"):
            view["headers"] = group["headers"]
        return view

    # API operations -------------------------------------------------------------------------

    async def upsert_endpoints(self, user: str, name: str, body: Any) -> None:
        """Add endpoints (a named one replaces the endpoint of that name); creates the group."""
        validate_name(name, "url group name")
        wanted = _endpoint_specs(body, require_url=True)
        if self.loops is not None:
            for index, spec in enumerate(wanted):
                self.loops.refuse_url(spec["url"], f"endpoints[{index}].url")
        limits = self.settings.limits
        async with self._lock:
            group = await self.store.url_groups.get(user, name)
            now = self.clock.now_ms()
            if group is None:
                count = await self.store.url_groups.count(user)
                require_room("url groups", count, limits.max_url_groups, limits.name)
                group = {"createdAt": now, "endpoints": [], "headers": {}}
            endpoints: list[dict[str, str]] = group["endpoints"]
            before = len(endpoints)
            for spec in wanted:
                _upsert(endpoints, spec)
            require_room(
                "endpoints per url group",
                before,
                limits.max_endpoints_per_group,
                limits.name,
                adding=len(endpoints) - before,
            )
            group["updatedAt"] = now
            await self.store.url_groups.put(user, name, group)

    async def remove_endpoints(self, user: str, name: str, body: Any) -> None:
        """Remove endpoints by url and/or name; the group goes when its last endpoint does."""
        wanted = _endpoint_specs(body, require_url=False)
        async with self._lock:
            group = await self.store.url_groups.get(user, name)
            if group is None:
                raise NotFound(f"url group {name!r} not found")
            group["endpoints"] = [
                e for e in group["endpoints"] if not any(_matches(e, s) for s in wanted)
            ]
            if not group["endpoints"]:
                await self.store.url_groups.remove(user, name)
                return
            group["updatedAt"] = self.clock.now_ms()
            await self.store.url_groups.put(user, name, group)

    async def get(self, user: str, name: str) -> dict[str, Any]:
        group = await self.store.url_groups.get(user, name)
        if group is None:
            raise NotFound(f"url group {name!r} not found")
        return self.view(name, group)

    async def list_all(self, user: str) -> list[dict[str, Any]]:
        stored = await self.store.url_groups.all(user)
        groups = [self.view(name, group) for name, group in stored.items()]
        return sorted(groups, key=lambda g: (g["createdAt"], g["name"]))

    async def delete(self, user: str, name: str) -> None:
        """Forget the group; messages already published to it still finish."""
        async with self._lock:
            await self.store.url_groups.remove(user, name)

    async def set_headers(self, user: str, name: str, body: Any) -> None:
        """Replace the group's default headers after validating them as publish headers."""
        if not isinstance(body, dict) or not isinstance(body.get("headers"), dict):
            raise BadRequest('invalid body: expected {"headers": {"Name": "value" or [values]}}')
        headers: dict[str, list[str]] = {}
        for raw_name, raw in body["headers"].items():
            values = raw if isinstance(raw, list) else [raw]
            if not raw_name.strip() or any(c in raw_name for c in " \t\r\n:"):
                raise BadRequest(f"invalid headers: {raw_name!r} is not a header name")
            if not values or not all(isinstance(v, str) for v in values):
                raise BadRequest(
                    f"invalid headers.{raw_name}: expected a string or a list of strings"
                )
            headers.setdefault(canonical(raw_name.strip()), []).extend(values)
        opts = parse_publish(_default_items(headers), self.settings)
        if self.loops is not None:
            self.loops.refuse("", opts, "headers.")
        async with self._lock:
            group = await self.store.url_groups.get(user, name)
            if group is None:
                raise NotFound(f"url group {name!r} not found")
            group["headers"] = headers
            group["updatedAt"] = self.clock.now_ms()
            await self.store.url_groups.put(user, name, group)

    # Publishing ----------------------------------------------------------------------------

    async def with_defaults(self, user: str, destination: str, items: Items) -> Items:
        """``items`` with the group's default headers added, when ``destination`` is a group."""
        if is_url(destination):
            return items
        group = await self.store.url_groups.get(user, destination)
        if group is None or not group.get("headers"):
            return items
        return merge_defaults(_default_items(group["headers"]), items)

    async def resolve(
        self, user: str, name: str
    ) -> tuple[list[Endpoint], dict[str, list[str]]] | None:
        """``Publisher.resolve_group``: the endpoints and the default forwarded headers."""
        group = await self.store.url_groups.get(user, name)
        if group is None:
            return None
        endpoints = [Endpoint(e["url"], e.get("name") or None) for e in group["endpoints"]]
        forwarded: dict[str, list[str]] = {}
        if group.get("headers"):
            forwarded = parse_publish(_default_items(group["headers"]), self.settings).header
        return endpoints, forwarded


def _endpoint_specs(body: Any, *, require_url: bool) -> list[dict[str, str]]:
    if not isinstance(body, dict) or not isinstance(body.get("endpoints"), list):
        raise BadRequest('invalid body: expected {"endpoints": [{"url": ..., "name": ...}]}')
    specs: list[dict[str, str]] = []
    for index, item in enumerate(body["endpoints"]):
        field = f"endpoints[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"invalid {field}: expected an object with url and/or name")
        spec: dict[str, str] = {}
        url, name = item.get("url"), item.get("name")
        if url is not None and url != "":
            if not isinstance(url, str):
                raise BadRequest(f"invalid {field}.url: expected a string")
            spec["url"] = validate_url(url, f"{field}.url")
        if name is not None and name != "":
            if not isinstance(name, str):
                raise BadRequest(f"invalid {field}.name: expected a string")
            spec["name"] = validate_name(name, f"{field}.name")
        if require_url and "url" not in spec:
            raise BadRequest(f"invalid {field}.url: required")
        if not spec:
            raise BadRequest(f"invalid {field}: give url or name")
        specs.append(spec)
    if not specs:
        raise BadRequest("invalid endpoints: the list is empty")
    return specs


def _upsert(endpoints: list[dict[str, str]], spec: dict[str, str]) -> None:
    """A named spec replaces the endpoint of that name, or names an unnamed one with its url;
    an unnamed spec adds its url once."""
    name = spec.get("name")
    if name is None:
        if not any(e["url"] == spec["url"] for e in endpoints):
            endpoints.append(spec)
        return
    for index, existing in enumerate(endpoints):
        if existing.get("name") == name:
            endpoints[index] = spec
            return
    for index, existing in enumerate(endpoints):
        if existing["url"] == spec["url"] and not existing.get("name"):
            endpoints[index] = spec
            return
    endpoints.append(spec)


def _matches(endpoint: dict[str, str], spec: dict[str, str]) -> bool:
    return all(endpoint.get(key) == value for key, value in spec.items())
