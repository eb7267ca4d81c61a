"""What makes a contract stable: ids in URLs and names become ``{id}``, values that change
from run to run (UUIDs, timestamps, epoch times) become fixed stand-ins of the same format,
and secrets (credential headers, passwords and secret query values in URLs) never reach the
file (docs/contracts.md#what-is-recorded)."""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ..server.masking import _secret_name, mask_secrets

__all__ = ["REDACTED", "is_secret", "mask_url", "mask_value", "template", "template_url"]

ID = "{id}"
REDACTED = "<redacted>"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_ZERO_UUID = "00000000-0000-4000-8000-000000000000"
# Credentials whose header name has none of the words the printed-URL masking looks for.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Epoch times in seconds or milliseconds (2001-09 to 2286-11): a run's clock, not data.
_EPOCH_S = (1_000_000_000, 10_000_000_000)
_EPOCH_MS = (1_000_000_000_000, 10_000_000_000_000)


def _is_id(token: str) -> bool:
    """A token that names one thing rather than a kind of thing: all digits, or a long
    mix of letters and digits (a ULID, a hash, a QStash id's tail)."""
    if token.isdigit():
        return True
    return len(token) >= 12 and any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


def template(text: str) -> str:
    """``text`` with every id in it replaced by ``{id}`` (``orders/42`` -> ``orders/{id}``)."""
    if text.isdigit():
        return ID
    if text.isalpha() or not text:
        return text
    return _template(text)


@functools.lru_cache(maxsize=4_096)
def _template(text: str) -> str:
    text = _UUID.sub(ID, text)
    return _TOKEN.sub(lambda m: ID if _is_id(m.group()) else m.group(), text)


def _ip(host: str | None) -> bool:
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _netloc(url: str) -> tuple[str, str]:
    """``url``'s network location with a loopback address's port as ``{port}`` (a test
    server's port changes every run) and ids as ``{id}``, and the rest of the URL."""
    parts = urlsplit(url)
    return _location(parts.netloc), url[len(f"{parts.scheme}://{parts.netloc}") :]


@functools.lru_cache(maxsize=1_024)
def _location(netloc: str) -> str:
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and _loopback(parts.hostname):
        netloc = netloc.rsplit(":", 1)[0] + ":{port}"
    if _ip(parts.hostname):
        return netloc
    # Ids in host names too: a tenant's subdomain, a test's own host.
    userinfo, at, hostport = netloc.rpartition("@")
    host, colon, port_text = hostport.partition(":")
    return userinfo + at + template(host) + colon + port_text


def mask_url(url: str) -> str:
    """A concrete URL as an exemplar keeps it: a loopback port as ``{port}``, run-to-run
    values (UUIDs, dates) as stand-ins."""
    url = mask_secrets(url)
    parts = urlsplit(url)
    netloc, rest = _netloc(url)
    return f"{parts.scheme}://{netloc}{mask_value(rest)}"


def template_url(url: str) -> str:
    """A destination as a template: ids in the path and query values become ``{id}``, and
    a loopback address's port ``{port}``."""
    url = mask_secrets(url)
    parts = urlsplit(url)
    netloc, _ = _netloc(url)
    path = "/".join(template(segment) for segment in parts.path.split("/"))
    query = "&".join(
        f"{name}={template(value)}"
        for name, value in sorted(parse_qsl(parts.query, keep_blank_values=True))
    )
    return urlunsplit((parts.scheme, netloc, path, query, ""))


@functools.lru_cache(maxsize=1_024)
def is_secret(header: str) -> bool:
    """A header whose value is a credential: recorded by name only. The words that make a
    name secret (token, key, secret, password, signature ...) are those of ``server.masking``."""
    return header.lower() in _SECRET_HEADERS or _secret_name(header)


def _stand_in_datetime(match: re.Match[str]) -> str:
    # The same format with every digit of the date and time fixed: 2000-01-01T00:00:00.
    fixed = "2000-01-01T00:00:00"
    text = match.group()
    out = []
    for i, char in enumerate(text):
        if char.isdigit() and i < len(fixed) and fixed[i].isdigit():
            out.append(fixed[i])
        elif char.isdigit():
            out.append("0")
        else:
            out.append(char)
    return "".join(out)


def _mask_text(text: str) -> str:
    if "-" not in text:  # UUIDs and dates all have one
        return text
    text = _UUID.sub(_ZERO_UUID, text)
    return _DATETIME.sub(_stand_in_datetime, text)


def mask_value(value: Any) -> Any:
    """A JSON value with what changes from run to run fixed: UUIDs, dates and times, epoch
    times (seconds or milliseconds) become stand-ins of the same format."""
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        for low, high in (_EPOCH_S, _EPOCH_MS):
            if low <= value < high:
                return type(value)(low)
        return value
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    if isinstance(value, dict):
        return {key: mask_value(item) for key, item in value.items()}
    return value
