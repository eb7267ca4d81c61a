from __future__ import annotations

import jwt
from qstash import Receiver

from qstash_emulator import check_signature, sign

KEYS = ("sig_current0000000000000000000000", "sig_next000000000000000000000000")


def test_signature_verifies_with_the_official_receiver() -> None:
    import time

    now = int(time.time())
    token = sign(KEYS[0], "https://a.example/x", b"body", now)
    Receiver(*KEYS).verify(signature=token, body="body", url="https://a.example/x")
    assert check_signature(token, KEYS, "https://a.example/x", b"body", now).ok


def test_next_key_is_tried() -> None:
    token = sign(KEYS[1], "https://a.example", b"", 1_700_000_000)
    check = check_signature(token, KEYS, "https://a.example", b"", 1_700_000_000)
    assert check.ok and check.key == KEYS[1]


def test_each_failing_claim_is_named() -> None:
    now = 1_700_000_000
    token = sign(KEYS[0], "https://a.example/x", b"body", now)
    assert check_signature(None, KEYS, "u", b"", now).failed_claim == "signature"
    assert (
        check_signature(
            token, ("sig_k1" + "x" * 26, "sig_k2" + "x" * 26), "https://a.example/x", b"body", now
        ).failed_claim
        == "key"
    )
    sub = check_signature(token, KEYS, "https://a.example/y", b"body", now)
    assert sub.failed_claim == "sub" and "https://a.example/x" in sub.reason
    assert (
        check_signature(token, KEYS, "https://a.example/x", b"tampered", now).failed_claim == "body"
    )
    assert (
        check_signature(token, KEYS, "https://a.example/x", b"body", now + 301).failed_claim
        == "exp"
    )
    forged = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "iss": "x"},
        KEYS[0],
        algorithm="HS256",
    )
    assert check_signature(forged, KEYS, "https://a.example/x", b"body", now).failed_claim == "iss"
