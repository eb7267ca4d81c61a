"""``/v2/keys``: the dev keys, rotation, and deliveries signed with the rotated key.

The rules: docs/behaviour.md#keys.
"""

from __future__ import annotations

import httpx
import pytest
from qstash import QStash, Receiver
from qstash.errors import SignatureError

from qstash_emulator import Emulator

from .helpers import Destination, auth


def test_default_keys_are_the_official_dev_keys(client: QStash) -> None:
    keys = client.signing_key.get()
    assert keys.current == "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
    assert keys.next == "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs"


def test_each_dev_user_has_its_own_keys(emulator: Emulator) -> None:
    for user in emulator.settings.users:
        r = httpx.get(f"{emulator.url}/v2/keys", headers=auth(user))
        assert r.json() == {"current": user.current_signing_key, "next": user.next_signing_key}


def test_rotate_then_deliver(emulator: Emulator, client: QStash, destination: Destination) -> None:
    old = client.signing_key.get()
    new = client.signing_key.rotate()
    assert new.current == old.next and new.next.startswith("sig_") and new.next != old.next
    assert client.signing_key.get() == new
    client.message.publish(url=destination.url + "/k", body="x")
    (got,) = destination.wait(1)
    Receiver(new.current, new.next).verify(
        signature=got.headers["upstash-signature"], body="x", url=destination.url + "/k"
    )
    with pytest.raises(SignatureError):
        Receiver(old.current, old.current).verify(
            signature=got.headers["upstash-signature"], body="x", url=destination.url + "/k"
        )
