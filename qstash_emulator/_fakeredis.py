"""The in-memory store's client: redis-py's asyncio API on fakeredis, without the wire format.

redis-py packs every command into RESP bytes and fakeredis parses them back, in Python, on
the same thread: together an eighth of the emulator's CPU under load. This connection hands
fakeredis each command as its list of encoded arguments instead, which is what the parser
would have produced. Should a fakeredis release change the internals used here, the plain
connection (RESP both ways) is used and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import fakeredis
import redis.asyncio as aioredis
from fakeredis.aioredis import FakeAsyncRedisConnection, FakeWriter

__all__ = ["connect", "direct_supported"]


class _Fields(list[bytes]):
    """One command, encoded, as fakeredis's parser would hand it on."""


class _DirectWriter(FakeWriter):
    def writelines(self, data: Iterable[Any]) -> None:
        sock: Any = self._socket
        if sock is None:
            return
        for chunk in data:
            if type(chunk) is not _Fields:
                sock.sendall(chunk)
            elif not sock._server.connected or sock._killed:
                raise sock._connection_error_class("Connection closed by server.")
            else:
                sock._process_command(chunk)


class DirectConnection(FakeAsyncRedisConnection):
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
        assert self._sock is not None
        self._writer = _DirectWriter(self._sock)


def direct_supported() -> bool:
    """Whether this fakeredis has the internals the direct connection relies on."""
    from fakeredis._socket._base import BaseFakeSocket

    needed = ("_process_command", "sendall")
    return all(hasattr(BaseFakeSocket, name) for name in needed) and hasattr(
        FakeAsyncRedisConnection, "_connect"
    )


def connect(pool_size: int) -> Any:
    """A private in-memory fakeredis behind redis-py's asyncio client."""
    options: dict[str, Any] = {}
    if direct_supported():
        options["connection_class"] = DirectConnection
    # A blocking pool: past the limit, a request waits for a connection instead of
    # failing with "Too many connections" (redis-py's default pool raises at 100).
    return fakeredis.FakeAsyncRedis(
        server=fakeredis.FakeServer(),
        connection_pool_class=aioredis.BlockingConnectionPool,
        max_connections=pool_size,
        timeout=None,
        **options,
    )
