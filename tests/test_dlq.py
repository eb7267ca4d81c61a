"""``/v2/dlq``: list with filters and cursor, get, delete, bulk delete, retry.

The rules: docs/behaviour.md#dead-letters.
"""

from __future__ import annotations

import httpx
import pytest
from qstash import QStash
from qstash.errors import QStashError

from qstash_emulator import Emulator

from .conftest import Destination


def _auth(emu: Emulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.token}"}


def _fail(emu: Emulator, url: str, **headers: str) -> str:
    r = httpx.post(
        f"{emu.url}/v2/publish/{url}",
        content=b"dead",
        headers={**_auth(emu), "Upstash-Retries": "0", **headers},
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
    r = httpx.get(f"{virtual.url}/v2/dlq?host=x", headers=_auth(virtual))
    assert r.status_code == 400 and "host" in r.json()["error"]
    r = httpx.get(f"{virtual.url}/v2/dlq?count=101", headers=_auth(virtual))
    assert r.status_code == 400 and "count" in r.json()["error"]


def test_delete_and_delete_many(vclient: QStash, virtual: Emulator, dead: list[str]) -> None:
    ids = [m.dlq_id for m in vclient.dlq.list().messages]
    vclient.dlq.delete(ids[0])
    with pytest.raises(QStashError, match="404"):
        vclient.dlq.get(ids[0])
    with pytest.raises(QStashError, match="404"):
        vclient.dlq.delete(ids[0])
    assert vclient.dlq.delete_many([ids[1], "1-0"]) == 1
    r = httpx.delete(f"{virtual.url}/v2/dlq", params={"dlqIds": ids[2]}, headers=_auth(virtual))
    assert r.json() == {"deleted": 1}
    assert vclient.dlq.list().messages == []


def test_bulk_delete_by_filter(
    virtual: Emulator, dead: list[str], destination: Destination
) -> None:
    r = httpx.delete(
        f"{virtual.url}/v2/dlq", params={"url": destination.url + "/b"}, headers=_auth(virtual)
    )
    assert r.json() == {"deleted": 2}


def test_retry_one_with_override_and_bulk(
    virtual: Emulator, vclient: QStash, dead: list[str], destination: Destination
) -> None:
    entries = vclient.dlq.list().messages
    before = len(destination.received)
    r = httpx.post(
        f"{virtual.url}/v2/dlq/retry/{entries[0].dlq_id}",
        headers={**_auth(virtual), "Upstash-Retries": "2"},
    )
    assert r.status_code == 201 and set(r.json()) == {"messageId"}
    new_id = r.json()["messageId"]
    assert new_id not in dead
    assert vclient.message.get(new_id).max_retries == 2
    bulk = httpx.post(f"{virtual.url}/v2/dlq/retry", headers=_auth(virtual))
    assert bulk.status_code == 201
    assert bulk.json()["cursor"] == "" and len(bulk.json()["responses"]) == 2
    assert vclient.dlq.list().messages == []
    virtual.run_until_idle()
    # Every retried letter was delivered once (the destination answers 200 by default now).
    assert len(destination.received) - before == 3
    missing = httpx.post(f"{virtual.url}/v2/dlq/retry/1-0", headers=_auth(virtual))
    assert missing.status_code == 404


def test_a_mistyped_filter_changes_nothing(
    vclient: QStash, virtual: Emulator, dead: list[str], destination: Destination
) -> None:
    before = sorted(m.dlq_id for m in vclient.dlq.list().messages)
    delivered = len(destination.received)
    for method, path in [("DELETE", "/v2/dlq"), ("POST", "/v2/dlq/retry")]:
        r = httpx.request(
            method, f"{virtual.url}{path}?labeel=l1&count=100", headers=_auth(virtual)
        )
        assert r.status_code == 400, r.text
        assert "'labeel'" in r.json()["error"]
    virtual.run_until_idle()
    assert sorted(m.dlq_id for m in vclient.dlq.list().messages) == before
    assert len(destination.received) == delivered
