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


def test_tokens_are_what_pyjwt_makes_of_the_same_claims() -> None:
    for key, url, body, now in [
        (KEYS[0], "https://a.example/x?y=1", b"body", 1_700_000_000),
        (KEYS[1], "http://127.0.0.1:9/", b"", 0),
        ("sig_" + "k" * 60, "https://a.example/" + "p" * 300, bytes(range(256)) * 9, 2**31),
    ]:
        token = sign(key, url, body, now, jti="jwt_fixed")
        times = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
        claims = jwt.decode(token, key, algorithms=["HS256"], options=times)
        assert claims["jti"] == "jwt_fixed" and claims["sub"] == url
        assert token == jwt.encode(claims, key, algorithm="HS256")


def test_signing_a_delivery_does_not_import_pyjwt() -> None:
    """PyJWT re-checks and re-encodes the header, algorithm and key on every call: deliveries
    sign with the standard library, the same bytes (above)."""
    import subprocess
    import sys

    code = (
        "import sys; from qstash_emulator.delivery.signing import sign; "
        "sign('k', 'https://a.example', b'x', 1); print('jwt' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
