"""The one JSON encoder and decoder, and the helpers for bodies inside JSON."""

from __future__ import annotations

import base64
from typing import Any

import orjson

__all__ = ["b64", "dumps", "loads", "text_or_base64"]


def dumps(value: Any) -> bytes:
    # A copy: orjson's bytes keep its whole output buffer (4-8 KB for a short document), and
    # the store keeps what it is given for as long as a message lives.
    return bytes(memoryview(orjson.dumps(value)))


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def text_or_base64(data: bytes, text_key: str, b64_key: str) -> dict[str, str]:
    """QStash shows a body as text when it is UTF-8, else under a ``...Base64`` key."""
    if not data:
        return {}
    try:
        return {text_key: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {b64_key: b64(data)}
