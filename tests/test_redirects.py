"""Following redirects: Go's rules, the same for every way of delivering."""

from __future__ import annotations

import pytest

from qstash_emulator.delivery.redirects import MAX_REDIRECTS, Hop, next_hop
from qstash_emulator.delivery.transport import DeliveryError, Response

POST = Hop(
    "POST",
    "https://shop.example.com/hooks/a?x=1",
    {"Content-Type": "application/json", "Authorization": "Bearer t", "Upstash-Signature": "s"},
    b'{"n": 1}',
)


def redirect(status: int, location: str | None) -> Response:
    return Response(status, [("Location", location)] if location is not None else [])


@pytest.mark.parametrize("status", [307, 308])
def test_307_and_308_repeat_the_method_and_body(status: int) -> None:
    hop = next_hop(POST, redirect(status, "/hooks/b"), 0)
    assert hop == Hop("POST", "https://shop.example.com/hooks/b", POST.headers, POST.body)


@pytest.mark.parametrize("status", [301, 302, 303])
def test_301_302_303_turn_into_a_get_without_a_body(status: int) -> None:
    hop = next_hop(POST, redirect(status, "b"), 0)
    assert hop == Hop(
        "GET",
        "https://shop.example.com/hooks/b",
        {"Authorization": "Bearer t", "Upstash-Signature": "s"},
        b"",
    )


def test_head_stays_head() -> None:
    head = Hop("HEAD", "http://a.test/x", {}, b"")
    assert next_hop(head, redirect(302, "/y"), 0) == Hop("HEAD", "http://a.test/y", {}, b"")


def test_credentials_stay_on_their_host() -> None:
    hop = next_hop(POST, redirect(308, "https://other.example.com/in"), 0)
    assert hop is not None
    assert hop.headers == {"Content-Type": "application/json", "Upstash-Signature": "s"}
    same_host = next_hop(POST, redirect(308, "http://shop.example.com:8080/in"), 0)
    assert same_host is not None and "Authorization" in same_host.headers


def test_answers_that_are_not_redirects() -> None:
    assert next_hop(POST, Response(200), 0) is None
    assert next_hop(POST, Response(304), 0) is None
    assert next_hop(POST, redirect(302, None), 0) is None  # no target: the answer
    assert next_hop(POST, redirect(302, ""), 0) is None


def test_the_eleventh_redirect_fails_the_attempt() -> None:
    assert next_hop(POST, redirect(302, "/loop"), MAX_REDIRECTS - 1) is not None
    with pytest.raises(DeliveryError, match=r"^TooManyRedirects: stopped after 10 redirects"):
        next_hop(POST, redirect(302, "/loop"), MAX_REDIRECTS)


def test_a_target_that_is_not_http_fails_the_attempt() -> None:
    with pytest.raises(DeliveryError, match="redirect to an unsupported URL: 'ftp://x.test/f'"):
        next_hop(POST, redirect(301, "ftp://x.test/f"), 0)
