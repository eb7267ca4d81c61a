"""The one random source for ids, tokens and signing keys, so a test can make them repeatable."""

from __future__ import annotations

import os
import random

__all__ = ["choose", "seed_ids"]

_SYSTEM = random.SystemRandom()
_rng: random.Random = _SYSTEM


def seed_ids(seed: int | str | None) -> None:
    """Derive every new id, token and signing key from ``seed``; ``None`` restores the OS source.

    Snapshot tests of message ids, signatures and DLQ payloads stay stable across runs.
    """
    global _rng
    _rng = _SYSTEM if seed is None else random.Random(seed)


def choose(alphabet: str, length: int) -> str:
    """``length`` characters drawn from ``alphabet`` (ASCII)."""
    if _rng is _SYSTEM:
        # One urandom call per id, not one per character (SystemRandom.choices makes `length`),
        # mapped byte by byte through a table.
        table = _tables.get(alphabet)
        if table is None:
            table = _tables[alphabet] = bytes(ord(alphabet[b % len(alphabet)]) for b in range(256))
        return os.urandom(length).translate(table).decode("ascii")
    return "".join(_rng.choices(alphabet, k=length))


_tables: dict[str, bytes] = {}
