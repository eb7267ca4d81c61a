"""What a header may be on the wire: Go's canonical name form, the connection and framing
headers that are the transport's own, and what HTTP/1.1 can carry in a name and a value (a
publish is refused a header its delivery could not send)."""

from __future__ import annotations

import re

from .._errors import BadRequest

__all__ = ["canonical", "check_sendable", "on_the_wire", "unsendable"]


# Connection and framing headers: the transport sets them from the request it sends (the body's
# own length, the destination's host), so a forwarded copy never reaches the wire. Clients that
# re-forward every header they received (the Upstash Workflow SDKs do) would otherwise truncate
# the body or misroute it.
_FRAMING = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)
# What HTTP/1.1 can carry (RFC 9110 5.1 and 5.5, and Go's net/http, which refuses the rest
# when it sends): a name is a token; a value has no control character but the tab.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def canonical(name: str) -> str:
    """Go's canonical header form: ``test-header`` becomes ``Test-Header``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def on_the_wire(name: str) -> bool:
    """Whether a forwarded header may be sent: connection and framing ones are the transport's."""
    lower = name.lower()
    return lower not in _FRAMING and not lower.startswith("proxy-")


def unsendable(name: str, value: str) -> str | None:
    """Why a header cannot be sent as given, or None when it can."""
    if not _TOKEN.fullmatch(name):
        return f"{name!r} is not a valid HTTP header name"
    if (bad := _CONTROL.search(value)) is not None:
        return f"the value of {name!r} has a control character ({bad.group()!r})"
    return None


def check_sendable(name: str, value: str, sent_as: str | None = None) -> None:
    """Refuse with a 400 naming header ``name`` (as the caller wrote it) when it, or the
    header ``sent_as`` it becomes on the wire, cannot be sent."""
    reason = unsendable(sent_as if sent_as is not None else name, value)
    if reason is not None:
        shown = canonical(name) if _TOKEN.fullmatch(name) else repr(name)
        raise BadRequest(f"invalid {shown}: {reason}")
