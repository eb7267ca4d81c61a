"""``/v2/messages``: read, cancel, bulk cancel in both styles; dedup, labels, redaction."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from qstash import QStash
from qstash.errors import QStashError

from qstash_emulator import Emulator

from .helpers import Destination, Held, HoldingGate, auth, sdk, wait_until


def test_get_pending_message_with_every_field(vclient: QStash, virtual: Emulator) -> None:
    res = vclient.message.publish_json(
        url="https://example.com/a",
        body={"k": 1},
        headers={"test-header": "v"},
        delay=60,
        retries=2,
        callback="https://example.com/cb",
        failure_callback="https://example.com/f",
        label="billing",
        timeout="30s",
        retry_delay="pow(2, retried) * 1000",
    )
    msg = vclient.message.get(res.message_id)
    assert msg.message_id == res.message_id
    assert msg.url == "https://example.com/a"
    assert msg.method == "POST"
    assert msg.body == '{"k": 1}'
    assert msg.headers == {"Test-Header": ["v"], "Content-Type": ["application/json"]}
    assert msg.max_retries == 2
    assert msg.not_before == msg.created_at + 60_000
    assert msg.callback == "https://example.com/cb"
    assert msg.failure_callback == "https://example.com/f"
    assert msg.caller_ip == "127.0.0.1"
    raw = httpx.get(f"{virtual.url}/v2/messages/{res.message_id}", headers=auth(virtual)).json()
    assert raw["labels"] == ["billing"] and raw["label"] == "billing"
    assert raw["timeout"] == 30_000
    assert raw["retryDelayExpression"] == "pow(2, retried) * 1000"


def test_binary_body_is_base64(virtual: Emulator) -> None:
    r = httpx.post(
        f"{virtual.url}/v2/publish/https://example.com/bin",
        content=b"\xff\x00",
        headers={**auth(virtual), "Upstash-Delay": "1m"},
    )
    raw = httpx.get(
        f"{virtual.url}/v2/messages/{r.json()['messageId']}", headers=auth(virtual)
    ).json()
    assert raw["bodyBase64"] == "/wA=" and "body" not in raw


def test_message_readable_during_grace_then_404(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    res = vclient.message.publish(url=destination.url + "/g", body="x")
    virtual.run_until_idle()
    assert vclient.message.get(res.message_id).message_id == res.message_id
    virtual.clock.advance(61)  # type: ignore[attr-defined]
    with pytest.raises(QStashError, match="404"):
        vclient.message.get(res.message_id)


def test_cancel_one_stops_delivery(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    res = vclient.message.publish(url=destination.url + "/c", body="x", delay="1h")
    vclient.message.cancel(res.message_id)
    virtual.run_until_idle()
    assert virtual.attempts == []
    states = [e.state.value for e in vclient.log.list(filter={"message_id": res.message_id}).logs]
    assert states == ["CANCELED", "CANCEL_REQUESTED", "CREATED"]
    r = httpx.delete(f"{virtual.url}/v2/messages/{res.message_id}", headers=auth(virtual))
    assert r.status_code == 404 and "CANCELED" in r.json()["error"]


def test_cancel_response_is_json(virtual: Emulator) -> None:
    r = httpx.post(
        f"{virtual.url}/v2/publish/https://example.com/j",
        headers={**auth(virtual), "Upstash-Delay": "1m"},
    )
    d = httpx.delete(f"{virtual.url}/v2/messages/{r.json()['messageId']}", headers=auth(virtual))
    assert (d.status_code, d.json()) == (200, {"cancelled": 1})
    missing = httpx.delete(f"{virtual.url}/v2/messages/msg_nope", headers=auth(virtual))
    assert missing.status_code == 404 and "msg_nope" in missing.json()["error"]


def test_bulk_cancel_json_body_and_all(virtual: Emulator, vclient: QStash) -> None:
    ids = [
        vclient.message.publish(url=f"https://example.com/{i}", body="x", delay="1h").message_id
        for i in range(4)
    ]
    assert vclient.message.cancel_many(ids[:2]) == 2
    assert vclient.message.cancel_all() == 2
    assert vclient.message.cancel_all() == 0


def test_bulk_cancel_query_filters(virtual: Emulator, vclient: QStash) -> None:
    for label, url in (
        ("a", "https://one.example/x"),
        ("b", "https://one.example/y"),
        ("a", "https://two.example/x"),
    ):
        vclient.message.publish(url=url, body="x", delay="1h", label=label)
    r = httpx.delete(f"{virtual.url}/v2/messages?label=a&host=one.example", headers=auth(virtual))
    assert r.json() == {"cancelled": 1}
    r = httpx.delete(
        f"{virtual.url}/v2/messages?url=https://one.example/y,https://nope", headers=auth(virtual)
    )
    assert r.json() == {"cancelled": 1}
    r = httpx.delete(f"{virtual.url}/v2/messages?count=100", headers=auth(virtual))
    assert r.json() == {"cancelled": 1}


def test_bulk_cancel_by_repeated_message_ids_query(virtual: Emulator, vclient: QStash) -> None:
    ids = [
        vclient.message.publish(url="https://example.com/q", body="x", delay="1h").message_id
        for _ in range(3)
    ]
    r = httpx.delete(
        f"{virtual.url}/v2/messages",
        params=[("messageIds", i) for i in ids[:2]],
        headers=auth(virtual),
    )
    assert r.json() == {"cancelled": 2}


def test_deduplication_id(virtual: Emulator, vclient: QStash) -> None:
    first = vclient.message.publish(url="https://example.com/d", body="1", deduplication_id="abc")
    second = vclient.message.publish(url="https://example.com/d", body="2", deduplication_id="abc")
    assert second.message_id == first.message_id and second.deduplicated is True
    r = httpx.post(
        f"{virtual.url}/v2/publish/https://example.com/d",
        headers={**auth(virtual), "Upstash-Deduplication-Id": "abc"},
    )
    assert r.status_code == 202 and r.json()["deduplicated"] is True
    virtual.clock.advance(601)  # type: ignore[attr-defined]
    third = vclient.message.publish(url="https://example.com/d", body="3", deduplication_id="abc")
    assert third.message_id != first.message_id and not third.deduplicated


def test_content_based_deduplication(vclient: QStash) -> None:
    a = vclient.message.publish(
        url="https://example.com/c", body="same", content_based_deduplication=True
    )
    b = vclient.message.publish(
        url="https://example.com/c", body="same", content_based_deduplication=True
    )
    c = vclient.message.publish(
        url="https://example.com/c", body="other", content_based_deduplication=True
    )
    assert b.message_id == a.message_id and b.deduplicated
    assert c.message_id != a.message_id


def test_redacted_fields_are_hidden_but_delivered(
    virtual: Emulator, destination: Destination
) -> None:
    r = httpx.post(
        f"{virtual.url}/v2/publish/{destination.url}/red",
        headers={
            **auth(virtual),
            "Upstash-Forward-Authorization": "Bearer secret",
            "Upstash-Forward-X-Keep": "k",
            "Upstash-Redact-Fields": "body,header[Authorization]",
            "Upstash-Delay": "1s",
        },
        content=b"card=4111",
    )
    raw = httpx.get(
        f"{virtual.url}/v2/messages/{r.json()['messageId']}", headers=auth(virtual)
    ).json()
    assert raw["body"] == "REDACTED:" + hashlib.sha256(b"card=4111").hexdigest()
    assert raw["header"]["Authorization"] == [
        "REDACTED:" + hashlib.sha256(b"Bearer secret").hexdigest()
    ]
    assert raw["header"]["X-Keep"] == ["k"]
    virtual.run_until_idle()
    (got,) = destination.wait(1, "/red")
    assert got.body == b"card=4111" and got.headers["authorization"] == "Bearer secret"


def test_users_are_isolated(virtual: Emulator) -> None:
    other = virtual.settings.users[1]
    r = httpx.post(
        f"{virtual.url}/v2/publish/https://example.com/i",
        headers={**auth(virtual), "Upstash-Delay": "1h"},
    )
    message_id = r.json()["messageId"]
    with sdk(virtual, other.token) as intruder:
        with pytest.raises(QStashError, match="404"):
            intruder.message.get(message_id)
        assert intruder.message.cancel_all() == 0
        assert intruder.log.list().logs == []
    assert (
        httpx.get(f"{virtual.url}/v2/messages/{message_id}", headers=auth(virtual)).status_code
        == 200
    )


def test_cancel_while_claimed_but_held_by_a_gate_stays_cancelled(
    virtual: Emulator, destination: Destination
) -> None:
    """A cancel that lands while a gate is still deciding is honoured; no retry revives it."""
    # Internal: a gate still deciding is held in the engine.
    engine = virtual.runtime.engine
    gate = HoldingGate()
    engine.gates.insert(0, gate)
    try:
        r = httpx.post(f"{virtual.url}/v2/publish/{destination.url}/held", headers=auth(virtual))
        message_id = r.json()["messageId"]
        assert gate.entered.wait(10)
        d = httpx.delete(f"{virtual.url}/v2/messages/{message_id}", headers=auth(virtual))
        assert d.json() == {"cancelled": 1}
        gate.release.set()
        virtual.run_until_idle()
    finally:
        gate.release.set()
        engine.gates.remove(gate)
    assert virtual.attempts == [] and destination.received == []
    events = httpx.get(f"{virtual.url}/v2/events?messageId={message_id}", headers=auth(virtual))
    assert [e["state"] for e in events.json()["events"]] == [
        "CANCELED",
        "CANCEL_REQUESTED",
        "CREATED",
    ]


def test_a_mistyped_cancel_filter_cancels_nothing(vclient: QStash, virtual: Emulator) -> None:
    ids = [
        vclient.message.publish(url="https://example.com/t", body="x", delay=60).message_id
        for _ in range(3)
    ]
    r = httpx.delete(f"{virtual.url}/v2/messages?labeel=x", headers=auth(virtual))
    assert r.status_code == 400 and "'labeel'" in r.json()["error"]
    r = httpx.delete(f"{virtual.url}/v2/messages?label=nope", headers=auth(virtual))
    assert r.json() == {"cancelled": 0}
    r = httpx.delete(
        f"{virtual.url}/v2/messages", params={"messageIds": ids}, headers=auth(virtual)
    )
    assert r.json() == {"cancelled": 3}  # all three were still pending


def test_a_message_in_flight_is_cancelled_once(
    emulator: Emulator, destination: Destination
) -> None:
    slow = Held((500, {}, b"retry me"))
    destination.script("/slow", slow)
    r = httpx.post(
        f"{emulator.url}/v2/publish/{destination.url}/slow",
        headers={**auth(emulator), "Upstash-Retries": "3"},
    )
    message_id = r.json()["messageId"]
    try:
        assert slow.entered.wait(10)
        one = f"{emulator.url}/v2/messages/{message_id}"
        assert httpx.delete(one, headers=auth(emulator)).json() == {"cancelled": 1}
        again = httpx.delete(one, headers=auth(emulator))
        assert again.status_code == 404, again.text
        # The attempt is ended at once: the message is CANCELED, or about to be.
        error = again.json()["error"]
        assert "being cancelled" in error or "already CANCELED" in error, error
        bulk = f"{emulator.url}/v2/messages"
        assert httpx.delete(bulk, headers=auth(emulator)).json() == {"cancelled": 0}
        by_id = httpx.delete(bulk, params={"messageIds": message_id}, headers=auth(emulator))
        assert by_id.json() == {"cancelled": 0}
    finally:
        slow.release.set()

    def states() -> list[str]:
        events = httpx.get(
            f"{emulator.url}/v2/events", params={"messageId": message_id}, headers=auth(emulator)
        ).json()["events"]
        return [e["state"] for e in reversed(events)]

    wait_until(lambda: "CANCELED" in states(), what="the cancel to finish")
    assert states().count("CANCEL_REQUESTED") == 1
    assert states()[-1] == "CANCELED"
    assert len(destination.wait(1, "/slow")) == 1
