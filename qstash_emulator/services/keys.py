"""The users' signing keys (docs/behaviour.md#keys): read, rotated, and kept at hand for
signing each delivery without a trip to the store."""

from __future__ import annotations

from ..store.core import Store
from .users import Users, new_signing_key

__all__ = ["SigningKeys", "new_signing_key"]


class SigningKeys:
    """Each user's (current, next) keys: its configured ones until a rotation is stored."""

    def __init__(self, store: Store, users: Users) -> None:
        self.store = store
        self.users = users
        self._keys: dict[str, tuple[str, str]] = {}

    def known(self, user_id: str) -> tuple[str, str]:
        """The user's keys as this process last saw them, rotations included, without a trip
        to the store."""
        cached = self._keys.get(user_id)
        if cached is not None:
            return cached
        user = self.users.get(user_id)
        if user is None:
            raise KeyError(user_id)
        return user.current_signing_key, user.next_signing_key

    async def get(self, user_id: str) -> tuple[str, str]:
        """The user's keys, after any rotation stored in the store."""
        cached = self._keys.get(user_id)
        if cached is not None:
            return cached
        stored = await self.store.keys.get(user_id)
        if stored is None:
            user = self.users.get(user_id)
            stored = (
                (user.current_signing_key, user.next_signing_key)
                if user
                else (new_signing_key(), new_signing_key())
            )
        self._keys[user_id] = stored
        return stored

    async def rotate(self, user_id: str) -> tuple[str, str]:
        """Next becomes current, and a new next is made."""
        _, nxt = await self.get(user_id)
        keys = (nxt, new_signing_key())
        await self.store.keys.set(user_id, *keys)
        self._keys[user_id] = keys
        return keys

    def reset(self) -> None:
        self._keys.clear()

    def forget_user(self, user: str) -> None:
        self._keys.pop(user, None)
