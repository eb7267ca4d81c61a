from __future__ import annotations

import pytest

from qstash_emulator._errors import BadRequest
from qstash_emulator.model.destination import parse_destination, validate_name, validate_url


@pytest.mark.parametrize(
    ("path", "query", "destination"),
    [
        ("https://example.com/a/b", "", "https://example.com/a/b"),
        ("https://example.com/a", "x=1&y=2", "https://example.com/a?x=1&y=2"),
        (
            "https://example.com/a",
            "x=1&qstash_token=t&upstash-retries=1",
            "https://example.com/a?x=1",
        ),
        ("https%3A%2F%2Fexample.com%2Fa%3Fq%3D1", "", "https://example.com/a?q=1"),
        ("https:/example.com/a", "", "https://example.com/a"),
        ("my-group", "", "my-group"),
        ("http://localhost:3000/api", "", "http://localhost:3000/api"),
    ],
)
def test_parse_destination(path: str, query: str, destination: str) -> None:
    assert parse_destination(path, query) == destination


@pytest.mark.parametrize("path", ["https://", "http://:80/x", "https://exa mple.com"])
def test_bad_urls_name_the_destination(path: str) -> None:
    with pytest.raises(BadRequest, match="destination"):
        parse_destination(path, "")


def test_a_url_gets_the_same_verdict_every_time() -> None:
    # Accepted URLs are remembered; a refused one is refused again, naming each time's field.
    good, bad = "https://example.com/again", "https://exa mple.com/again"
    assert validate_url(good, "destination") == good
    assert validate_url(good, "Upstash-Callback") == good
    for field in ("destination", "Upstash-Callback", "destination"):
        with pytest.raises(BadRequest, match=f"invalid {field}: .* contains whitespace"):
            validate_url(bad, field)


def test_names() -> None:
    assert validate_name("a-b_c.1", "queueName") == "a-b_c.1"
    for bad in ("", "a b", "a/b", "ü", "x" * 300):
        with pytest.raises(BadRequest, match="queueName"):
            validate_name(bad, "queueName")
