"""Where a delivery goes: responders, mounts, rewrites, the network guard, redirects."""

from __future__ import annotations

import asyncio

import pytest

from qstash_emulator.delivery.routing import Router
from qstash_emulator.delivery.transport import DeliveryError, Response


class Network:
    """Stands in for the network: records what was sent, answers from a table."""

    def __init__(self, answers: dict[str, Response] | None = None) -> None:
        self.sent: list[tuple[str, str, bytes]] = []
        self.answers = answers or {}

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Response:
        self.sent.append((method, url, body))
        return self.answers.get(url, Response(200, [], b"net"))

    async def close(self) -> None:
        pass


def send(router: Router, url: str, timeout_s: float = 5) -> Response:
    return asyncio.run(router.send("POST", url, {}, b"x", timeout_s))


def test_a_prefix_matches_whole_path_segments_only() -> None:
    network = Network()
    router = Router(network)
    router.rewrite("https://shop.example.com", "http://127.0.0.1:9000")
    send(router, "https://shop.example.com/jobs")
    send(router, "https://shop.example.com?x=1")
    send(router, "https://shop.example.community/jobs")
    assert [url for _, url, _ in network.sent] == [
        "http://127.0.0.1:9000/jobs",
        "http://127.0.0.1:9000?x=1",
        "https://shop.example.community/jobs",
    ]


def test_responders_answer_first_and_may_pass() -> None:
    class Scripted:
        async def respond(
            self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
        ) -> Response | None:
            return Response(503) if url.endswith("/down") else None

    network = Network()
    router = Router(network)
    router.responders.append(Scripted())
    assert send(router, "http://127.0.0.1/down").status == 503
    assert send(router, "http://127.0.0.1/up").status == 200
    assert [url for _, url, _ in network.sent] == ["http://127.0.0.1/up"]


def test_offline_refuses_hosts_that_are_not_local_mounted_or_rewritten() -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    network = Network()
    router = Router(network)
    router.offline = lambda url: f"not sent: {url}"
    router.mount("https://app.example.com", app)
    router.rewrite("https://api.example.com", "http://localhost:9")
    assert send(router, "https://app.example.com/x").status == 204
    assert send(router, "https://api.example.com/x").status == 200
    assert send(router, "http://[::1]:9/x").status == 200
    with pytest.raises(DeliveryError, match=r"^not sent: https://elsewhere.example.com/x$"):
        send(router, "https://elsewhere.example.com/x")
    assert [url for _, url, _ in network.sent] == ["http://localhost:9/x", "http://[::1]:9/x"]
    asyncio.run(router.close())


def test_redirects_are_routed_again_hop_by_hop() -> None:
    network = Network(
        {"http://127.0.0.1:1/a": Response(307, [("Location", "https://shop.example.com/b")])}
    )
    router = Router(network)
    router.rewrite("https://shop.example.com", "http://127.0.0.1:2")
    answer = send(router, "http://127.0.0.1:1/a")
    assert answer.status == 200
    assert network.sent == [
        ("POST", "http://127.0.0.1:1/a", b"x"),
        ("POST", "http://127.0.0.1:2/b", b"x"),
    ]


def test_the_timeout_covers_every_hop() -> None:
    class Slow(Network):
        async def send(
            self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float
        ) -> Response:
            await asyncio.sleep(0.06)
            return Response(302, [("Location", "/again")])

    with pytest.raises(DeliveryError, match=r"^timeout after 0.1s$"):
        send(Router(Slow()), "http://127.0.0.1/start", timeout_s=0.1)
