"""``/v2/dlq``: list with filters and cursor, get, delete, bulk delete, retry.

The rules: docs/behaviour.md#dead-letters.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from qstash import QStash
from qstash.errors import QStashError

from qstash_emulator import Emulator
from qstash_emulator.delivery.transport import Response as Answer

from .helpers import Answering, Destination, api, auth, sdk, wait_until


def _fail(emu: Emulator, url: str, **headers: str) -> str:
    r = httpx.post(
        f"{emu.url}/v2/publish/{url}",
        content=b"dead",
        headers={**auth(emu), "Upstash-Retries": "0", **headers},
    )
    return str(r.json()["messageId"])


@pytest.fixture
def dead(virtual: Emulator, destination: Destination) -> list[str]:
    destination.script("/a", (404, {}, b"404 Not Found"))
    destination.script("/b", (500, {}, b"x"), (500, {}, b"x"))
    ids = [
        _fail(virtual, destination.url + "/a", **{"Upstash-Label": "l1"}),
        _fail(virtual, destination.url + "/b"),
        _fail(virtual, destination.url + "/b", **{"Upstash-Label": "l2"}),
    ]
    virtual.run_until_idle()
    return ids


def test_list_get_and_shapes(vclient: QStash, dead: list[str], destination: Destination) -> None:
    listed = vclient.dlq.list()
    assert [m.message_id for m in listed.messages] == list(reversed(dead))
    assert listed.cursor is None
    entry = vclient.dlq.get(listed.messages[-1].dlq_id)
    assert entry.message_id == dead[0]
    assert entry.response_status == 404
    assert entry.response_body == "404 Not Found"
    assert entry.url == destination.url + "/a"
    assert entry.body == "dead"
    assert entry.max_retries == 0


def test_filters_and_cursor(
    virtual: Emulator, vclient: QStash, dead: list[str], destination: Destination
) -> None:
    assert [m.message_id for m in vclient.dlq.list(filter={"response_status": 404}).messages] == [
        dead[0]
    ]
    assert [m.message_id for m in vclient.dlq.list(filter={"label": "l2"}).messages] == [dead[2]]
    by_url = vclient.dlq.list(filter={"url": destination.url + "/b"}).messages
    assert {m.message_id for m in by_url} == {dead[1], dead[2]}
    page1 = vclient.dlq.list(count=2)
    assert len(page1.messages) == 2 and page1.cursor
    page2 = vclient.dlq.list(count=2, cursor=page1.cursor)
    assert [m.message_id for m in page2.messages] == [dead[0]] and page2.cursor is None
    r = httpx.get(f"{virtual.url}/v2/dlq?host=x", headers=auth(virtual))
    assert r.status_code == 400 and "host" in r.json()["error"]
    r = httpx.get(f"{virtual.url}/v2/dlq?count=101", headers=auth(virtual))
    assert r.status_code == 400 and "count" in r.json()["error"]


def test_delete_and_delete_many(vclient: QStash, virtual: Emulator, dead: list[str]) -> None:
    ids = [m.dlq_id for m in vclient.dlq.list().messages]
    vclient.dlq.delete(ids[0])
    with pytest.raises(QStashError, match="404"):
        vclient.dlq.get(ids[0])
    with pytest.raises(QStashError, match="404"):
        vclient.dlq.delete(ids[0])
    assert vclient.dlq.delete_many([ids[1], "1-0"]) == 1
    r = httpx.delete(f"{virtual.url}/v2/dlq", params={"dlqIds": ids[2]}, headers=auth(virtual))
    assert r.json() == {"deleted": 1}
    assert vclient.dlq.list().messages == []


def test_bulk_delete_by_filter(
    virtual: Emulator, dead: list[str], destination: Destination
) -> None:
    r = httpx.delete(
        f"{virtual.url}/v2/dlq", params={"url": destination.url + "/b"}, headers=auth(virtual)
    )
    assert r.json() == {"deleted": 2}


def test_retry_one_with_override_and_bulk(
    virtual: Emulator, vclient: QStash, dead: list[str], destination: Destination
) -> None:
    entries = vclient.dlq.list().messages
    before = len(destination.received)
    r = httpx.post(
        f"{virtual.url}/v2/dlq/retry/{entries[0].dlq_id}",
        headers={**auth(virtual), "Upstash-Retries": "2"},
    )
    assert r.status_code == 201 and set(r.json()) == {"messageId"}
    new_id = r.json()["messageId"]
    assert new_id not in dead
    assert vclient.message.get(new_id).max_retries == 2
    bulk = httpx.post(f"{virtual.url}/v2/dlq/retry", headers=auth(virtual))
    assert bulk.status_code == 201
    assert bulk.json()["cursor"] == "" and len(bulk.json()["responses"]) == 2
    assert vclient.dlq.list().messages == []
    virtual.run_until_idle()
    # Every retried letter was delivered once (the destination answers 200 by default now).
    assert len(destination.received) - before == 3
    missing = httpx.post(f"{virtual.url}/v2/dlq/retry/1-0", headers=auth(virtual))
    assert missing.status_code == 404


def test_a_retry_takes_every_message_setting_its_headers_give(
    virtual: Emulator, vclient: QStash, dead: list[str]
) -> None:
    """The fields a retry's headers set are those a publish's would (one table for both):
    labels and redacted fields too, the rest as the dead letter had them."""
    (entry,) = [m for m in vclient.dlq.list().messages if m.message_id == dead[0]]
    r = httpx.post(
        f"{virtual.url}/v2/dlq/retry/{entry.dlq_id}",
        headers={
            **auth(virtual),
            "Upstash-Label": "again",
            "Upstash-Redact-Fields": "body",
            "Upstash-Method": "PUT",
        },
    )
    assert r.status_code == 201, r.text
    again = httpx.get(
        f"{virtual.url}/v2/messages/{r.json()['messageId']}", headers=auth(virtual)
    ).json()
    assert (again["labels"], again["method"]) == (["again"], "PUT")
    assert again["body"].startswith("REDACTED:")
    assert again["maxRetries"] == 0  # as the dead letter had it


def test_a_mistyped_filter_changes_nothing(
    vclient: QStash, virtual: Emulator, dead: list[str], destination: Destination
) -> None:
    before = sorted(m.dlq_id for m in vclient.dlq.list().messages)
    delivered = len(destination.received)
    for method, path in [("DELETE", "/v2/dlq"), ("POST", "/v2/dlq/retry")]:
        r = httpx.request(method, f"{virtual.url}{path}?labeel=l1&count=100", headers=auth(virtual))
        assert r.status_code == 400, r.text
        assert "'labeel'" in r.json()["error"]
    virtual.run_until_idle()
    assert sorted(m.dlq_id for m in vclient.dlq.list().messages) == before
    assert len(destination.received) == delivered


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """An emulator on each store, whose deliveries fail until the test says otherwise."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    with Emulator(redis_url=url) as emu:
        yield emu


def test_retry_and_delete_race_has_one_winner_per_entry(backend: Emulator) -> None:
    failing = True
    delivered: list[str] = []

    def answer(method: str, url: str) -> Answer:
        if failing:
            return Answer(500, [], b"down")
        delivered.append(url)
        return Answer(200, [], b"ok")

    backend.add_responder(Answering(answer))
    label = f"race{uuid.uuid4().hex[:8]}"
    count = 60
    with api(backend) as http:
        for i in range(count):
            r = http.post(
                f"/v2/publish/https://example.com/{i}",
                headers={"Upstash-Retries": "0", "Upstash-Label": label},
            )
            assert r.status_code == 200, r.text
    with sdk(backend) as client:
        wait_until(
            lambda: len(client.dlq.list(filter={"label": label}, count=100).messages) == count,
            what="the dead letters",
        )
        dead = [m.dlq_id for m in client.dlq.list(filter={"label": label}, count=100).messages]
    failing = False
    # Each entry: a retry against a delete, and (for every third) a second retry.
    calls = [("POST", f"/v2/dlq/retry/{d}", d) for d in dead]
    calls += [("DELETE", f"/v2/dlq/{d}", d) for d in dead]
    calls += [("POST", f"/v2/dlq/retry/{d}", d) for d in dead[::3]]
    random.Random(7).shuffle(calls)
    with api(backend) as http:
        barrier = threading.Barrier(8)

        def call(item: tuple[str, str, str]) -> tuple[str, str, int]:
            method, path, dlq_id = item
            return dlq_id, method, http.request(method, path).status_code

        def first(item: tuple[str, str, str]) -> tuple[str, str, int]:
            barrier.wait(10)
            return call(item)

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(first, calls[:8])) + list(pool.map(call, calls[8:]))
    wins: dict[str, list[str]] = {d: [] for d in dead}
    for dlq_id, method, status in results:
        assert status in (200, 201, 404), (method, status)
        if status != 404:
            wins[dlq_id].append(method)
    assert {d: w for d, w in wins.items() if len(w) != 1} == {}  # exactly one winner each
    retried = sum(w == ["POST"] for w in wins.values())
    wait_until(lambda: len(delivered) >= retried, what=f"{retried} re-published deliveries")
    backend.wait_idle()  # a second publish of one entry would have been delivered by now
    assert len(delivered) == retried
    with sdk(backend) as client:
        assert client.dlq.list(filter={"label": label}).messages == []


@pytest.mark.parametrize("dlq_id", ["x", "1-0", "18446744073709551616-0", "1-2-3", "١-0"])
def test_ids_that_name_no_entry_take_nothing(virtual: Emulator, dlq_id: str) -> None:
    creds = auth(virtual)
    r = httpx.request("DELETE", f"{virtual.url}/v2/dlq", params={"dlqIds": dlq_id}, headers=creds)
    assert r.json() == {"deleted": 0}
    assert httpx.delete(f"{virtual.url}/v2/dlq/{dlq_id}", headers=creds).status_code == 404
    r = httpx.post(f"{virtual.url}/v2/dlq/retry/{dlq_id}", headers=creds)
    assert r.status_code == 404
