"""Where a publish goes: the destination written into the request path.

The rules: docs/behaviour.md#destinations.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .._errors import BadRequest
from .wire import wire_url

__all__ = [
    "NAME_PATTERN",
    "config_from_query",
    "is_url",
    "parse_destination",
    "refuse_private",
    "validate_name",
    "validate_url",
]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
_COLLAPSED = re.compile(r"^(https?):/(?!/)", re.IGNORECASE)
_MAX_NAME = 256
# URLs that passed validate_url (whose answer depends on the URL alone): a few destinations
# take most messages, so most publishes skip the parsing.
_valid: set[str] = set()
_VALID_KEPT = 4_096


def is_url(destination: str) -> bool:
    return destination[:8].lower().startswith(("http://", "https://"))


def validate_url(url: str, field: str) -> str:
    """Check that ``url`` is an absolute http(s) URL with a host."""
    if url in _valid:
        return url
    if not is_url(url):
        raise BadRequest(
            f"invalid {field}: {url!r}: endpoint has invalid scheme, add http:// or https://"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise BadRequest(f"invalid {field}: {url!r}: {exc}") from exc
    if not parts.hostname:
        raise BadRequest(f"invalid {field}: {url!r} has no host")
    if any(c in url for c in "\r\n\t "):
        raise BadRequest(f"invalid {field}: {url!r} contains whitespace")
    try:
        wire_url(url)  # what the transport sends: a URL it cannot send is refused here
    except ValueError as exc:
        raise BadRequest(f"invalid {field}: {url!r}: {exc}") from exc
    if len(_valid) >= _VALID_KEPT:
        _valid.clear()
    _valid.add(url)
    return url


def validate_name(name: str, field: str) -> str:
    """Queue, URL group and schedule names: letters, digits, ``-``, ``_`` and ``.``."""
    if not name or len(name) > _MAX_NAME or not NAME_PATTERN.match(name):
        raise BadRequest(
            f"invalid {field}: {name!r} may only contain letters, digits, '-', '_' and '.'"
        )
    return name


def parse_destination(raw_path: str, raw_query: str) -> str:
    """Rebuild the destination from the path after the prefix and the request's query string.

    A percent-encoded URL is decoded once, ``https:/host`` is repaired, and the query keys the
    server consumes (``qstash_token``, ``upstash-*``) are dropped from the destination.
    """
    path = raw_path
    if path[:8].lower().startswith(("http%3a", "https%3a")):
        path = unquote(path)
    path = _COLLAPSED.sub(lambda m: m.group(1) + "://", path)
    if not is_url(path):
        if not path:
            raise BadRequest("invalid destination: the path has no destination after the prefix")
        return path
    if not raw_query:
        return validate_url(path, "destination")
    kept = [
        (k, v)
        for k, v in parse_qsl(raw_query, keep_blank_values=True)
        if k != "qstash_token" and not k.lower().startswith("upstash-")
    ]
    if len(kept) == len(parse_qsl(raw_query, keep_blank_values=True)) and raw_query:
        return validate_url(f"{path}?{raw_query}", "destination")
    return validate_url(f"{path}?{urlencode(kept)}" if kept else path, "destination")


def config_from_query(raw_query: str) -> list[tuple[str, str]]:
    """The ``upstash-*`` query parameters, which configure a publish like headers do."""
    if not raw_query:
        return []
    return [
        (k.lower(), v)
        for k, v in parse_qsl(raw_query, keep_blank_values=True)
        if k.lower().startswith("upstash-")
    ]


async def refuse_private(url: str, field: str) -> None:
    """Production refuses destinations on loopback or private networks; strict mode does too."""
    host = wire_url(url).raw_host or ""  # the name the transport resolves
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError as exc:
            raise BadRequest(f"invalid {field}: cannot resolve {host!r}") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if address.is_loopback or address.is_private or address.is_link_local:
            kind = "loopback" if address.is_loopback else "private"
            raise BadRequest(f"invalid {field}: endpoint resolves to a {kind} address: {address}")
