"""Secrets in URLs hidden from what the emulator prints: the start-up banner, the live feed
and log lines. API answers keep URLs as given; only printed text is masked.

The rules: docs/behaviour.md#secrets-in-printed-urls.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "mask_secrets"]

MASK = "***"

# The words of a query parameter's name that make its value a secret: qstash_token,
# access_token, api_key, apiKey, client_secret, X-Amz-Signature, X-Amz-Credential, ...
_SECRET_WORDS = frozenset(
    {
        "token",
        "key",
        "apikey",
        "secret",
        "password",
        "passwd",
        "pwd",
        "signature",
        "sig",
        "auth",
        "credential",
        "credentials",
    }
)
# user:password@ after a scheme; the user name stays, the password goes.
_USERINFO = re.compile(r"(?<=://)([^/?#@\s:]*):([^/?#@\s]+)@")
# name=value in a query string (after ? or &, or ; as some servers allow).
_PARAM = re.compile(r"(?<=[?&;])([^=&#\s]+)=([^&#\s]*)")
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _secret_name(name: str) -> bool:
    return any(word.lower() in _SECRET_WORDS for word in _WORD.findall(name))


def _param(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    return f"{name}={MASK}" if value and _secret_name(name) else match.group(0)


def mask_secrets(text: str) -> str:
    """``text`` (a URL, or a line with URLs in it) with passwords and secret query values
    replaced by ``***``."""
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    if "=" in text:
        text = _PARAM.sub(_param, text)
    return text
