"""The in-memory store's client: redis-py's asyncio API on fakeredis, without the wire format.

redis-py packs every command into RESP bytes and fakeredis parses them back, in Python, on
the same thread: together an eighth of the emulator's CPU under load. This connection hands
fakeredis each command as its list of encoded arguments instead, which is what the parser
would have produced. It relies on fakeredis internals; every one is looked up before use
(modules, class attributes, and the socket's attributes on each connect), and should a
fakeredis release move or drop one, the plain connection (RESP both ways) is used and
nothing else changes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import fakeredis
import redis.asyncio as aioredis

__all__ = ["connect", "direct_connection_class", "direct_supported"]

# The internals the direct connection uses: (module, class, attributes) looked up before
# the class is built, and the attributes each connection's fake socket must have.
_CLASSES = (
    ("fakeredis.aioredis", "FakeAsyncRedisConnection", ("_connect", "pack_command")),
    ("fakeredis.aioredis", "FakeWriter", ("writelines",)),
    ("fakeredis._socket._base", "BaseFakeSocket", ("_process_command", "sendall")),
)
_SOCKET_ATTRIBUTES = ("_process_command", "_server", "_killed", "_connection_error_class")


class _Fields(list[bytes]):
    """One command, encoded, as fakeredis's parser would hand it on."""


def _resp(fields: list[bytes]) -> bytes:
    """The RESP form of a command: what a connection without the direct path sends."""
    parts = [b"*%d\r\n" % len(fields)]
    for field in fields:
        parts.append(b"$%d\r\n%s\r\n" % (len(field), field))
    return b"".join(parts)


def _lookup() -> dict[str, Any] | None:
    """The classes the direct connection builds on, or None if one is missing."""
    import importlib

    found: dict[str, Any] = {}
    for module_name, class_name, attributes in _CLASSES:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            return None
        if not all(hasattr(cls, name) for name in attributes):
            return None
        found[class_name] = cls
    # The socket and writer the connection keeps, read and replaced after it connects.
    code = getattr(
        getattr(found["FakeAsyncRedisConnection"]._connect, "__code__", None), "co_names", ()
    )
    if not {"_sock", "_writer"} <= set(code):
        return None
    return found


@functools.cache
def direct_connection_class() -> type[Any] | None:
    """The connection class that skips RESP, or None when this fakeredis lacks an internal
    it needs (then the plain connection is used)."""
    found = _lookup()
    if found is None:
        return None
    writer_base: Any = found["FakeWriter"]
    connection_base: Any = found["FakeAsyncRedisConnection"]

    class DirectWriter(writer_base):  # type: ignore[misc]
        """Hands argument lists to the fake socket; RESP when its internals are not there."""

        def __init__(self, sock: Any) -> None:
            super().__init__(sock)
            self._direct = all(hasattr(sock, name) for name in _SOCKET_ATTRIBUTES)

        def writelines(self, data: Iterable[Any]) -> None:
            sock: Any = self._socket
            if sock is None:
                return
            for chunk in data:
                if type(chunk) is not _Fields:
                    sock.sendall(chunk)
                elif not self._direct:
                    sock.sendall(_resp(chunk))
                elif not sock._server.connected or sock._killed:
                    raise sock._connection_error_class("Connection closed by server.")
                else:
                    sock._process_command(chunk)

    class DirectConnection(connection_base):  # type: ignore[misc]
        """Sends argument lists, not RESP, to fakeredis; replies come back as before."""

        def pack_command(self, *args: Any) -> list[Any]:
            # As redis-py does: a command name may carry literal arguments ("CONFIG GET").
            if isinstance(args[0], str):
                args = tuple(args[0].encode().split()) + args[1:]
            elif b" " in args[0]:
                args = tuple(args[0].split()) + args[1:]
            encode: Any = self.encoder.encode  # redis-py's Encoder is untyped
            fields = _Fields()
            for arg in args:
                kind = type(arg)
                if kind is bytes:
                    fields.append(arg)
                elif kind is str:
                    fields.append(arg.encode())
                else:
                    value = encode(arg)
                    fields.append(bytes(value) if isinstance(value, memoryview) else value)
            return [fields]

        def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[Any]:
            return [self.pack_command(*command)[0] for command in commands]

        async def _connect(self) -> None:
            await super()._connect()
            sock = self._sock
            # Replaced even when the socket lacks the internals: commands packed above
            # must reach it, as RESP then.
            self._writer = DirectWriter(sock)

    return DirectConnection


def direct_supported() -> bool:
    """Whether this fakeredis has the internals the direct connection relies on."""
    return direct_connection_class() is not None


def connect(pool_size: int) -> Any:
    """A private in-memory fakeredis behind redis-py's asyncio client."""
    options: dict[str, Any] = {}
    direct = direct_connection_class()
    if direct is not None:
        options["connection_class"] = direct
    # A blocking pool: past the limit, a request waits for a connection instead of
    # failing with "Too many connections" (redis-py's default pool raises at 100).
    # No socket timeout: with one, redis-py writes each command through asyncio.wait_for,
    # which on Python 3.11 drops a cancel that arrives as the write completes (for fakeredis,
    # nearly always), so a task busy with the store could not be cancelled; nothing here
    # blocks on a socket for a timeout to end.
    return fakeredis.FakeAsyncRedis(
        server=fakeredis.FakeServer(),
        connection_pool_class=aioredis.BlockingConnectionPool,
        max_connections=pool_size,
        timeout=None,
        socket_timeout=None,
        **options,
    )
