"""What keeps messages from looping back into the emulator (docs/behaviour.md#loops).

A URL group whose endpoints publish to the group again doubles its messages at every round,
and a callback that publishes with the same callback never ends: the server spends itself on
them. Two rules. A URL the emulator can tell is its own (its port, under a loopback name or
address or a name it serves) is refused where it is given. What it cannot tell (a LAN
address, an alias in /etc/hosts, a rewrite) is caught by counting: a publish that arrives
with a delivery's ``Upstash-Signature`` continues a chain, each message of a chain carries
its depth to the next (``Upstash-Emulator-Hops``, a forwarded header, so it survives a
restart), and a chain deeper than ``MAX_HOPS`` is refused.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

from .._errors import BadRequest
from ..model.destination import is_url
from ..model.options import CallbackConfig, PublishOptions
from ..server.config import Settings

__all__ = ["HOPS", "MAX_HOPS", "Loops"]

HOPS = "Upstash-Emulator-Hops"
MAX_HOPS = 5
_SIGNED = "upstash-signature"


class Loops:
    """Refuses URLs that address the emulator itself, and chains of deliveries that publish
    again deeper than ``MAX_HOPS``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The port the server is bound to (with --port 0, known only once bound); until it is
        # set, only the hop count applies.
        self.port: int | None = None

    def own(self, url: str) -> bool:
        """Whether ``url`` addresses this emulator's own port under a name it answers to."""
        if self.port is None:
            return False
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            return False
        host = (parts.hostname or "").rstrip(".").lower()
        if port != self.port or not host:
            return False
        bind = self.settings.host.strip("[]").lower()
        if host in ("localhost", bind) or host.endswith(".localhost"):
            return True
        if host in self.settings.allowed_hosts:
            return True
        address = _address(host)
        if address is None:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback or address.is_unspecified

    def refuse_url(self, url: str, field: str) -> None:
        """A 400 naming ``field`` when ``url`` is the emulator's own."""
        if self.own(url):
            raise BadRequest(
                f"invalid {field}: {url!r} is this emulator's own address: what is delivered "
                "there would be published again, a loop (use another port for your endpoint)"
            )

    def refuse(self, destination: str, opts: PublishOptions, prefix: str = "") -> None:
        """Check a publish: its destination, callback and failure callback (and theirs)."""
        if is_url(destination):
            self.refuse_url(destination, f"{prefix}destination")
        for label, config in _callbacks(opts):
            self.refuse_url(config["url"], f"{prefix}{label}")

    def count_hop(self, headers: Mapping[str, str], opts: PublishOptions) -> None:
        """A publish made by a delivery (it carries the delivery's signature) is one hop
        deeper than the message delivered: refused past ``MAX_HOPS``, else its messages and
        callbacks carry the depth on."""
        self.carry(opts, self.depth(headers))

    def depth(self, headers: Mapping[str, str]) -> int | None:
        """How many hops deep a publish sent with ``headers`` is (None: not made by a
        delivery); a 400 past ``MAX_HOPS``."""
        if _SIGNED not in headers:
            return None
        raw = headers.get(HOPS.lower(), "0").strip()
        hops = (int(raw) if raw.isdigit() and len(raw) < 6 else 0) + 1
        if hops > MAX_HOPS:
            raise BadRequest(
                f"invalid {HOPS}: {hops - 1}: this publish is made by the delivery of a message "
                f"{hops - 1} publishes from the first; a chain longer than {MAX_HOPS} is taken "
                "for a loop back to the emulator (docs/behaviour.md#loops)"
            )
        return hops

    @staticmethod
    def carry(opts: PublishOptions, hops: int | None) -> None:
        """The message (and its callbacks) carry ``hops`` on to what they are delivered to."""
        if hops is None:
            return
        opts.header[HOPS] = [str(hops)]
        for _, config in _callbacks(opts):
            config["header"][HOPS] = [str(hops)]


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` is written as, in the forms the resolver reads too (``127.1``,
    ``2130706433``, ``0x7f000001``, ``0177.0.0.1``: an HTTP client connects to 127.0.0.1)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _callbacks(opts: PublishOptions) -> list[tuple[str, CallbackConfig]]:
    found: list[tuple[str, CallbackConfig]] = []
    for label, config in (
        ("Upstash-Callback", opts.callback),
        ("Upstash-Failure-Callback", opts.failure_callback),
    ):
        while config is not None:
            found.append((label, config))
            config = config.get("failure_callback")
            label += "-Failure-Callback"
    return found
