"""Who may call the API: the official dev server's four users, plus any added at run time."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from ..model.ids import choose

__all__ = ["DEFAULT_USERS", "User", "make_token"]

_PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True)
class User:
    """One isolated tenant: its token, signing keys and an optional read-only token."""

    user_id: str
    token: str
    current_signing_key: str
    next_signing_key: str
    readonly_token: str | None = None


def make_token(user_id: str, password: str | None = None) -> str:
    """Build a token the way QStash does: base64 of ``{"UserID":..., "Password":...}``."""
    document = {"UserID": user_id, "Password": password or choose(_PASSWORD_ALPHABET, 16)}
    return base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


# The official dev server's users, so code written for it works unchanged
# (docs/behaviour.md#dev-server).
DEFAULT_USERS = (
    User(
        "defaultUser",
        "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=",
        "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
        "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
    ),
    User(
        "testUser1",
        "eyJVc2VySUQiOiJ0ZXN0VXNlcjEiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        "sig_7GVPjvuwsfqF65iC8fSrs1dfYruM",
        "sig_5NoELc3EFnZn4DVS5bDs2Nk4b7Ua",
    ),
    User(
        "testUser2",
        "eyJVc2VySUQiOiJ0ZXN0VXNlcjIiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        "sig_6jWGaWRxHsw4vMSPJprXadyvrybF",
        "sig_7qHbvhmahe5GwfePDiS5Lg3pi6Qx",
    ),
    User(
        "testUser3",
        "eyJVc2VySUQiOiJ0ZXN0VXNlcjMiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        "sig_5T8FcSsynBjn9mMLBsXhpacRovJf",
        "sig_7GFR4YaDshFcqsxWRZpRB161jguD",
    ),
)
