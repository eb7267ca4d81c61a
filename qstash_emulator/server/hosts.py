"""Which ``Host`` names a server bound to an address may answer to (the DNS-rebinding rule).

A hostile name that starts resolving to 127.0.0.1 makes a browser treat the emulator as that
name's own origin; its requests still carry the name in ``Host``. Only loopback names, IP
literals the bind covers, the bind name itself and the names given to ``--allowed-hosts`` are
the emulator's own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

__all__ = ["host_allowed", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for names and addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hostname(header: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:8080`` -> ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    if header.count(":") == 1:
        return header.partition(":")[0]
    return header


def host_allowed(header: str, bind: str, names: Collection[str] = ()) -> bool:
    """Whether a request naming ``header`` as its Host may reach a server bound to ``bind``;
    ``names`` are further names the user said the server is reached by."""
    host, bind = _hostname(header), bind.strip("[]").lower()
    if not host:
        return False
    if host == "localhost" or host == bind or host in names:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name other than the bind name: what DNS rebinding looks like
    # An IP literal cannot be rebound; accept those the bind listens on.
    if address.is_loopback or bind in ("0.0.0.0", "::", ""):
        return True
    try:
        return address == ipaddress.ip_address(bind)
    except ValueError:
        return False
