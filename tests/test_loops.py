"""Messages cannot loop back into the emulator: a URL it can tell is its own is refused where
it is given, and a chain of deliveries that publish again stops at ``MAX_HOPS``, while the
API keeps answering (docs/behaviour.md#loops)."""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qstash_emulator import Emulator
from qstash_emulator.services.loops import MAX_HOPS

from .helpers import Destination, api, wait_until


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    emu.reset()
    with api(emu) as client:
        yield client


def refusal(field: str, url: str) -> dict[str, str]:
    return {
        "error": f"invalid {field}: {url!r} is this emulator's own address: what is delivered "
        "there would be published again, a loop (use another port for your endpoint)"
    }


OWN = [
    "http://127.0.0.1:{port}/v2/publish/g",
    "http://localhost:{port}/v2/publish/g?a=1",
    "http://LOCALHOST.:{port}/",
    "http://app.localhost:{port}/x",
    "http://[::1]:{port}/v2/publish/g",
    "http://0.0.0.0:{port}/v2/publish/g",
    "http://127.0.0.2:{port}/v2/keys",
    "https://127.0.0.1:{port}/x",
    # Shorthand IPv4 forms the resolver reads as 127.0.0.1 (inet_aton), as an HTTP client does
    "http://127.1:{port}/v2/publish/g",
    "http://2130706433:{port}/v2/publish/g",
    "http://0x7f000001:{port}/v2/publish/g",
    "http://0177.0.0.1:{port}/v2/publish/g",
]


@pytest.mark.parametrize("template", OWN)
def test_a_destination_addressing_the_emulator_is_refused(
    http: httpx.Client, emu: Emulator, template: str
) -> None:
    url = template.format(port=emu.port)
    answer = http.post(f"/v2/publish/{url}", content=b"x")
    assert answer.status_code == 400
    assert answer.json() == refusal("destination", url)


def test_every_place_a_url_is_given_is_checked(http: httpx.Client, emu: Emulator) -> None:
    own = f"http://127.0.0.1:{emu.port}/v2/publish/ring"
    elsewhere = "http://127.0.0.1:9/x"  # another port of this machine is not the emulator
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("Upstash-Callback", f"/v2/publish/{elsewhere}", {"headers": {"Upstash-Callback": own}}),
        (
            "Upstash-Failure-Callback",
            f"/v2/publish/{elsewhere}",
            {"headers": {"Upstash-Failure-Callback": own}},
        ),
        (
            "Upstash-Callback-Failure-Callback",
            f"/v2/publish/{elsewhere}",
            {
                "headers": {
                    "Upstash-Callback": elsewhere,
                    "Upstash-Callback-Failure-Callback": own,
                }
            },
        ),
        ("destination", f"/v2/enqueue/q/{own}", {}),
        ("destination", f"/v2/schedules/{own}", {"headers": {"Upstash-Cron": "* * * * *"}}),
        (
            "endpoints[1].url",
            "/v2/topics/ring/endpoints",
            {"json": {"endpoints": [{"url": elsewhere}, {"url": own}]}},
        ),
    ]
    for field, path, request in cases:
        answer = http.post(path, **request)
        assert answer.status_code == 400, (field, answer.text)
        assert answer.json() == refusal(field, own)
    # A group's default callback, when it is set and when a publish would use it.
    assert http.post(
        "/v2/topics/ring/endpoints", json={"endpoints": [{"url": elsewhere}]}
    ).is_success
    patch = http.patch("/v2/topics/ring", json={"headers": {"Upstash-Callback": own}})
    assert patch.status_code == 400
    assert patch.json() == refusal("headers.Upstash-Callback", own)
    batch = http.post("/v2/batch", json=[{"destination": own}, {"destination": elsewhere}])
    assert batch.status_code == 200
    assert batch.json()[0] == refusal("batch[0].destination", own)
    assert set(batch.json()[1]) == {"messageId", "url"}
    assert http.post(f"/v2/publish/{elsewhere}", headers={"Upstash-Delay": "1h"}).is_success


def created(http: httpx.Client) -> int:
    logs = http.get("/v2/logs", params={"state": "CREATED", "count": 1000}).json()
    return len(logs["events"])


def api_latencies(http: httpx.Client, seconds: float) -> list[float]:
    """How long ``GET /v2/keys`` takes, call after call, for ``seconds``."""
    took = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        assert http.get("/v2/keys").status_code == 200
        took.append(time.perf_counter() - started)
    return took


@pytest.mark.slow
def test_a_group_loop_under_a_name_the_check_cannot_see_stops_and_the_api_answers(
    http: httpx.Client, emu: Emulator, destination: Destination
) -> None:
    # The first delivery over the network loads the HTTP client (half a second): not the
    # loop's cost, so it is paid before the clock starts.
    assert http.post(f"/v2/publish/{destination.url}/warm", content=b"x").is_success
    destination.wait(1, "/warm")
    # loop.test reaches the emulator, and nothing at publish time can tell: the hop count must.
    emu.rewrite("http://loop.test", emu.url)
    try:
        back = f"http://loop.test/v2/publish/ring?qstash_token={emu.token}"
        endpoints = [{"name": "a", "url": back}, {"name": "b", "url": back + "&b"}]
        assert http.post("/v2/topics/ring/endpoints", json={"endpoints": endpoints}).is_success
        assert http.post("/v2/publish/ring", content=b"x").is_success
        took = api_latencies(http, 2.0)
        # Each round doubles: 2, 4, ... 2^(MAX_HOPS+1) messages, then every publish is refused.
        total = 1 + sum(2 ** (hop + 1) for hop in range(MAX_HOPS + 1))  # 1: the warm-up
        wait_until(lambda: created(http) == total, timeout=10)
        took += api_latencies(http, 1.0)
        assert created(http) == total  # and no more
        p99 = statistics.quantiles(took, n=100)[98]
        assert p99 < 0.1, f"p99 of API calls during the loop: {p99 * 1000:.0f} ms"
        refused = http.get("/v2/logs", params={"state": "ERROR", "count": 1}).json()["events"]
        assert json.loads(base64.b64decode(refused[0]["responseBody"])) == {
            "error": f"invalid Upstash-Emulator-Hops: {MAX_HOPS}: this publish is made by the "
            f"delivery of a message {MAX_HOPS} publishes from the first; a chain longer than "
            f"{MAX_HOPS} is taken for a loop back to the emulator (docs/behaviour.md#loops)"
        }
    finally:
        emu.unroute("http://loop.test")


def test_a_callback_loop_stops(http: httpx.Client, emu: Emulator, destination: Destination) -> None:
    # A group's default callback publishes to the group again: one message a round.
    emu.rewrite("http://loop.test", emu.url)
    try:
        endpoint = {"endpoints": [{"url": f"{destination.url}/echo"}]}
        assert http.post("/v2/topics/echo/endpoints", json=endpoint).is_success
        back = f"http://loop.test/v2/publish/echo?qstash_token={emu.token}"
        patch = http.patch("/v2/topics/echo", json={"headers": {"Upstash-Callback": back}})
        assert patch.is_success, patch.text
        assert http.post("/v2/publish/echo", content=b"x").is_success
        destination.wait(MAX_HOPS + 1, "/echo")
        wait_until(lambda: created(http) == 2 * (MAX_HOPS + 1), timeout=10)
        hops = [r.headers.get("upstash-emulator-hops") for r in destination.wait(MAX_HOPS + 1)]
        assert hops == [None, *map(str, range(1, MAX_HOPS + 1))]
    finally:
        emu.unroute("http://loop.test")


@pytest.mark.parametrize("path", ["/v2/batch", "/v2/publish/{url}"])
def test_a_publish_made_by_a_delivery_counts_a_hop(
    http: httpx.Client, emu: Emulator, path: str
) -> None:
    # What an endpoint that passes the delivery's headers on sends (or the emulator itself).
    url = "http://127.0.0.1:9/x"
    target = path.format(url=url)
    later = {"Upstash-Delay": "1h"}
    batch = json.dumps([{"destination": url, "headers": later}])

    def send(hops: str | None) -> httpx.Response:
        headers = {"Upstash-Signature": "eyJ...", **later}
        if hops is not None:
            headers["Upstash-Emulator-Hops"] = hops
        return http.post(target, headers=headers, content=batch if "batch" in path else "x")

    for sent, carried in [(None, "1"), ("2", "3"), (str(MAX_HOPS - 1), str(MAX_HOPS))]:
        answer = send(sent)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        message_id = (found[0] if isinstance(found, list) else found)["messageId"]
        message = http.get(f"/v2/messages/{message_id}").json()
        assert message["header"]["Upstash-Emulator-Hops"] == [carried]
    refused = send(str(MAX_HOPS))
    assert refused.status_code == 400
    assert refused.json()["error"].startswith(f"invalid Upstash-Emulator-Hops: {MAX_HOPS}: ")
    # Without a delivery's signature it is an ordinary publish: nothing is counted.
    plain = http.post(f"/v2/publish/{url}", headers={"Upstash-Emulator-Hops": "99"}, content=b"x")
    assert plain.status_code == 200
