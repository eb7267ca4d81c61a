"""Secrets in printed URLs: passwords and secret query values become ``***``."""

from __future__ import annotations

import pytest

from qstash_emulator.server.masking import mask_secrets


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("redis://:hunter2@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("rediss://default:AXy@eu1.io:6379", "rediss://default:***@eu1.io:6379"),
        (
            "http://a/v2/publish/g?qstash_token=abc&x=1",
            "http://a/v2/publish/g?qstash_token=***&x=1",
        ),
        (
            "GET https://h/x?apiKey=1&api_key=2&X-Amz-Signature=3&X-Amz-Credential=4 and more",
            "GET https://h/x?apiKey=***&api_key=***&X-Amz-Signature=***&X-Amz-Credential=*** "
            "and more",
        ),
        (
            "https://h/?token=a&access_token=b&client_secret=c&password=d&sig=e&auth=f#top",
            "https://h/?token=***&access_token=***&client_secret=***&password=***&sig=***&auth=***"
            "#top",
        ),
        # Not secrets: words that only contain one, an empty value, a user name alone.
        (
            "https://h/?keyword=a&monkey=b&tokenizer=c&key=",
            "https://h/?keyword=a&monkey=b&tokenizer=c&key=",
        ),
        ("http://ann@h/x", "http://ann@h/x"),
        ("redis://localhost:6379", "redis://localhost:6379"),
    ],
)
def test_mask_secrets(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked
