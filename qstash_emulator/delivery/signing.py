"""``Upstash-Signature``: the JWT every delivery carries (docs/behaviour.md#signing)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from .. import _json
from ..model.ids import choose

__all__ = ["SignatureCheck", "body_hash", "check_signature", "sign"]

# Go's zero time, which production uses for nbf so that clock skew never rejects a token.
_GO_ZERO_TIME = -62135596800
_LIFETIME_S = 300
_JTI_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# The JOSE header every token carries, as PyJWT encodes it (compact, keys sorted).
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=") + b"."
# An HMAC keyed once per signing key (keying hashes the key and pads it: a third of an HMAC).
_KEYED: dict[str, hmac.HMAC] = {}
_KEYED_MAX = 1_024


def body_hash(body: bytes) -> str:
    """base64url of SHA-256 over the raw body, with padding, as production sends it."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode("ascii")


def sign(key: str, url: str, body: bytes, now_s: int, jti: str | None = None) -> str:
    """Sign one request to ``url`` with ``body`` at ``now_s``: an HS256 JWT, byte for byte
    what PyJWT's ``jwt.encode`` makes of these claims for an ASCII ``url``, built here since
    everything but the claims is the same for every delivery (PyJWT checks and encodes its
    header, algorithm and key again on each call)."""
    claims = {
        "aud": "",
        "body": body_hash(body),
        "exp": now_s + _LIFETIME_S,
        "iat": now_s,
        "iss": "Upstash",
        "jti": jti or "jwt_" + choose(_JTI_ALPHABET, 28),
        "nbf": _GO_ZERO_TIME,
        "sub": url,
    }
    signed = _HEADER + base64.urlsafe_b64encode(_json.dumps(claims)).rstrip(b"=")
    mac = _keyed(key).copy()
    mac.update(signed)
    return (signed + b"." + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")).decode("ascii")


def _keyed(key: str) -> hmac.HMAC:
    keyed = _KEYED.get(key)
    if keyed is None:
        if len(_KEYED) >= _KEYED_MAX:  # keys of users long gone: start again
            _KEYED.clear()
        keyed = _KEYED[key] = hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)
    return keyed


@dataclass(frozen=True)
class SignatureCheck:
    """The result of checking a signature, naming the claim that failed."""

    ok: bool
    failed_claim: str | None = None
    reason: str = ""
    key: str | None = None


def check_signature(
    token: str | None, keys: tuple[str, str], url: str, body: bytes, now_s: int
) -> SignatureCheck:
    """Verify like the official Receiver does, but say which check failed and why."""
    if not token:
        return SignatureCheck(False, "signature", "no Upstash-Signature header")
    import jwt

    claims = None
    for key in keys:
        try:
            claims = jwt.decode(
                token,
                key.encode("utf-8"),
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_nbf": False, "verify_aud": False},
            )
            break
        except jwt.InvalidTokenError:
            continue
    if claims is None:
        return SignatureCheck(False, "key", "signed with neither the current nor the next key")
    used = key
    if claims.get("iss") != "Upstash":
        return SignatureCheck(False, "iss", f"iss is {claims.get('iss')!r}, want 'Upstash'", used)
    if claims.get("exp", 0) < now_s:
        return SignatureCheck(False, "exp", f"expired at {claims.get('exp')}, now is {now_s}", used)
    if claims.get("nbf", 0) > now_s:
        return SignatureCheck(False, "nbf", f"not valid before {claims.get('nbf')}", used)
    if claims.get("sub") != url:
        return SignatureCheck(False, "sub", f"sub is {claims.get('sub')!r}, want {url!r}", used)
    want = body_hash(body).rstrip("=")
    if str(claims.get("body", "")).rstrip("=") != want:
        return SignatureCheck(
            False, "body", f"body hash {claims.get('body')!r}, want {want!r}", used
        )
    return SignatureCheck(True, key=used)
