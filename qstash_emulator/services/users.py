"""Who may call the API: its users and their tokens (the official dev server's four users,
plus any added at run time), and the caller a token names."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .._errors import Forbidden, Unauthorized
from ..model.ids import choose

__all__ = ["DEFAULT_USERS", "Caller", "User", "Users", "make_token", "new_signing_key"]

_PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_KEY_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class User:
    """One isolated tenant: its token, signing keys and an optional read-only token."""

    user_id: str
    token: str
    current_signing_key: str
    next_signing_key: str
    readonly_token: str | None = None


@dataclass(frozen=True)
class Caller:
    """The user behind a request, and whether its token may write."""

    user: User
    readonly: bool

    @property
    def user_id(self) -> str:
        return self.user.user_id


class Users:
    """The users of one emulator, and which token acts for whom (held in this process)."""

    def __init__(self, users: Iterable[User] = ()) -> None:
        self._users: dict[str, User] = {}
        self._tokens: dict[str, Caller] = {}
        # Why a token that names nobody right now is refused (see ``bind_token``).
        self._unbound: dict[str, str] = {}
        # Called with each authenticated caller (the pytest plugin notes who used the API).
        self.authenticated: list[Callable[[Caller], None]] = []
        for user in users:
            self.add(user)

    def add(self, user: User) -> User:
        """Let ``user`` call the API; its data is invisible to every other user."""
        self._users[user.user_id] = user
        self._tokens[user.token] = Caller(user, readonly=False)
        if user.readonly_token:
            self._tokens[user.readonly_token] = Caller(user, readonly=True)
        return user

    def create(self, user_id: str | None = None, keys: tuple[str, str] | None = None) -> User:
        """A fresh isolated user with its own token and signing keys (new ones unless given)."""
        user_id = user_id or "user_" + choose("0123456789abcdef", 12)
        current, nxt = keys or (new_signing_key(), new_signing_key())
        return self.add(
            User(user_id, make_token(user_id), current, nxt, make_token(user_id + "-readonly"))
        )

    def bind_token(self, token: str, user_id: str | None, unbound: str = "") -> None:
        """Make ``token`` act for ``user_id``, or for nobody (refused with ``unbound`` as the
        reason): a token that outlives users, such as the pytest plugin's session token,
        which stands for whichever test is running."""
        if user_id is None:
            self._tokens.pop(token, None)
            self._unbound[token] = unbound
        else:
            self._tokens[token] = Caller(self._users[user_id], readonly=False)

    def remove(self, user_id: str) -> bool:
        """The user's tokens stop working; False if there was no such user."""
        user = self._users.pop(user_id, None)
        if user is None:
            return False
        self._tokens.pop(user.token, None)
        if user.readonly_token:
            self._tokens.pop(user.readonly_token, None)
        return True

    def get(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def all(self) -> list[User]:
        return list(self._users.values())

    def authenticate(self, token: str | None, write: bool) -> Caller:
        """The caller ``token`` names; 401 without one, 403 when it is read-only and ``write``."""
        if not token:
            raise Unauthorized(
                "Unauthorized: missing bearer token "
                "(Authorization: Bearer <QSTASH_TOKEN> or ?qstash_token=)"
            )
        caller = self._tokens.get(token)
        if caller is None:
            raise Unauthorized("Unauthorized: " + (self._unbound.get(token) or "invalid token"))
        if write and caller.readonly:
            raise Forbidden("Forbidden: this token is read-only")
        for listener in self.authenticated:
            listener(caller)
        return caller


def new_signing_key() -> str:
    """A key shaped like QStash's: ``sig_`` and 28 characters."""
    return "sig_" + choose(_KEY_ALPHABET, 28)


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
