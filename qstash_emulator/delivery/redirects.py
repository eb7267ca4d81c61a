"""Following redirects, the same way on every delivery path (network, rewrite, mount, script).

The rules are Go's ``net/http`` client's, which production's delivery uses: at most 10
redirects; 301, 302 and 303 turn the request into a GET without a body (HEAD stays HEAD);
307 and 308 repeat the method and body; credentials are not sent to another host. The
headers, ``Upstash-Signature`` among them, are otherwise sent again as they were, so the
signature's ``sub`` stays the URL that was published.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from .transport import DeliveryError, Response

__all__ = ["MAX_REDIRECTS", "Hop", "next_hop"]

MAX_REDIRECTS = 10

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CREDENTIALS = frozenset({"authorization", "cookie", "www-authenticate", "proxy-authorization"})
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})


@dataclass(frozen=True)
class Hop:
    """The request to send next."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def next_hop(hop: Hop, response: Response, followed: int) -> Hop | None:
    """The request a redirect asks for, or None when ``response`` is the answer.

    ``followed`` counts the redirects already taken; one more than ``MAX_REDIRECTS`` fails
    the attempt, as a loop would otherwise never end.
    """
    if response.status not in _REDIRECTS:
        return None
    location = response.header("Location")
    if not location:
        return None  # a 3xx without a target is the destination's answer
    if followed >= MAX_REDIRECTS:
        raise DeliveryError(
            f"TooManyRedirects: stopped after {MAX_REDIRECTS} redirects (last to {location})"
        )
    url = urljoin(hop.url, location.strip())
    target = urlsplit(url)
    if target.scheme not in ("http", "https") or not target.hostname:
        raise DeliveryError(f"redirect to an unsupported URL: {location!r}")
    method, body, headers = hop.method, hop.body, dict(hop.headers)
    if response.status in (301, 302, 303) and method not in ("GET", "HEAD"):
        method, body = "GET", b""
        headers = {k: v for k, v in headers.items() if k.lower() not in _BODY_HEADERS}
    if target.hostname.lower() != (urlsplit(hop.url).hostname or "").lower():
        headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}
    return Hop(method, url, headers, body)
