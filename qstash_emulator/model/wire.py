"""A URL as the HTTP client puts it on the wire: the host IDNA-encoded, the path as written.

Publish checks a destination with the same function the transport sends it with, so what
cannot be sent is a 400 at publish, never a failed attempt. The rules:
docs/behaviour.md#destinations.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from yarl import URL

__all__ = ["wire_url"]

# RFC 3986: what a path or a query may hold as is. "%" stays, so escapes the caller wrote
# (%2e%2e, %2F) are sent as written; anything else (non-ASCII, a quote) is percent-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_HOST_CHARS = re.compile(r"[a-z0-9_.-]+")
_MAX_HOST = 253
_MAX_LABEL = 63


@functools.lru_cache(maxsize=4_096)  # a few destinations take most messages
def wire_url(url: str) -> URL:
    """``url`` as it is sent; ValueError (with the reason) when the client cannot send it.

    Go's client, which production sends with, keeps the path as written (``/x/../admin`` and
    ``%2e%2e`` included) and IDNA-encodes the host; aiohttp would remove dot segments."""
    # yarl comes with aiohttp; imported when the first URL is checked, not at start-up.
    from yarl import URL

    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    try:
        # A percent-encoded host is UTF-8 (RFC 3986 3.2.2): the SDKs encode a Unicode host so.
        hostport = unquote(hostport, errors="strict")
    except UnicodeDecodeError as exc:
        raise ValueError(f"host {hostport!r} is not UTF-8 once percent-decoded") from exc
    authority = URL(f"{parts.scheme}://{userinfo}{at}{hostport}/")  # IDNA-encodes the host
    _check_host(authority.raw_host or "")
    return URL.build(
        scheme=parts.scheme,
        authority=authority.raw_authority,
        path=quote(parts.path, safe=_PATH_SAFE),
        query_string=quote(parts.query, safe=_QUERY_SAFE),
        encoded=True,
    )


def _check_host(host: str) -> None:
    """What the resolver refuses (Python encodes a name for getaddrinfo with IDNA 2003)."""
    if ":" in host:
        return  # an IPv6 literal, already checked by yarl
    name = host[:-1] if host.endswith(".") else host
    if not _HOST_CHARS.fullmatch(name):
        raise ValueError(f"host {host!r} is not a valid host name")
    if len(name) > _MAX_HOST:
        raise ValueError(f"host name is longer than {_MAX_HOST} characters")
    for label in name.split("."):
        if not 0 < len(label) <= _MAX_LABEL:
            raise ValueError(
                f"host {host!r} has an empty label or one longer than {_MAX_LABEL} characters"
            )
