"""``/_emulator/...``: messages by state, dead letters, attempts, schedule times, run-now."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from qstash import QStash

from qstash_emulator import DEFAULT_USERS, Emulator
from qstash_emulator.model.message import Message
from qstash_emulator.store import core as _store

from .helpers import Destination, add_delayed, auth, sdk, wait_until


def _get(emu: Emulator, path: str, token: str | None = None, **params: Any) -> Any:
    r = httpx.get(
        f"{emu.url}/_emulator/{path}",
        params=params,
        headers=auth(token or emu),
    )
    assert r.status_code == 200, r.text
    return r.json()


def _post(emu: Emulator, path: str) -> httpx.Response:
    return httpx.post(f"{emu.url}/_emulator/{path}", headers=auth(emu))


def test_messages_by_state(virtual: Emulator, vclient: QStash, destination: Destination) -> None:
    now = virtual.clock.now_ms()
    destination.script("/fail", (500, {}, b"down"))
    delayed = vclient.message.publish_json(url=destination.url + "/ok", body={}, delay=60)
    failing = vclient.message.publish_json(url=destination.url + "/fail", body={}, retries=2)
    virtual.wait_idle()
    listed = _get(virtual, "messages")["messages"]
    by_id = {m["messageId"]: m for m in listed}
    assert by_id[delayed.message_id] == {
        "messageId": delayed.message_id,
        "state": "delayed",
        "url": destination.url + "/ok",
        "method": "POST",
        "kind": "message",
        "retried": 0,
        "maxRetries": 3,
        "createdAt": now,
        "notBefore": now + 60_000,
        "nextDeliveryTime": now + 60_000,
    }
    assert by_id[failing.message_id]["state"] == "retrying"
    assert by_id[failing.message_id]["retried"] == 1
    assert by_id[failing.message_id]["nextDeliveryTime"] == now + 12_182
    only = _get(virtual, "messages", state="retrying")["messages"]
    assert [m["messageId"] for m in only] == [failing.message_id]
    both = _get(virtual, "messages", state="retrying,delayed")["messages"]
    assert len(both) == 2
    # One message, in the list's shape: a dashboard's detail says the state the list says.
    for one in listed:
        assert _get(virtual, "messages", messageId=one["messageId"])["messages"] == [one]
    assert _get(virtual, "messages", messageId=delayed.message_id, state="retrying") == {
        "messages": []
    }


def test_one_message_is_listed_until_it_is_final_and_only_for_its_user(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    sent = client.message.publish_json(url=destination.url + "/ok", body={}, delay=60)
    theirs = _get(emulator, "messages", DEFAULT_USERS[1].token, messageId=sent.message_id)
    assert theirs == {"messages": []}
    (mine,) = _get(emulator, "messages", messageId=sent.message_id)["messages"]
    assert mine["state"] == "delayed"
    assert _post(emulator, f"run-now/{sent.message_id}").status_code == 200
    destination.wait(1, "/ok")
    wait_until(
        lambda: _get(emulator, "messages", messageId=sent.message_id) == {"messages": []},
        what="the delivered message to be final",
    )


def test_in_flight_state(emulator: Emulator, client: QStash, destination: Destination) -> None:
    release = threading.Event()

    def slow() -> tuple[int, dict[str, str], bytes]:
        release.wait(5)
        return 200, {}, b"ok"

    destination.script("/slow", slow)
    res = client.message.publish_json(url=destination.url + "/slow", body={})
    try:
        wait_until(lambda: destination.received, what="the request to arrive")
        states = [m["state"] for m in _get(emulator, "messages")["messages"]]
        assert states == ["in_flight"]
        # Run-now cannot move what is being delivered, and says why.
        r = _post(emulator, f"run-now/{res.message_id}")
        assert r.status_code == 404
        assert "is not waiting for a delivery time" in r.json()["error"]
    finally:
        release.set()
    emulator.wait_idle()
    assert _get(emulator, "messages")["messages"] == []


def test_unknown_state_is_400(virtual: Emulator) -> None:
    r = httpx.get(
        f"{virtual.url}/_emulator/messages?state=sleeping",
        headers=auth(virtual),
    )
    assert r.status_code == 400
    assert r.json()["error"] == (
        "invalid state: sleeping; expected any of pending, delayed, retrying, in_flight, queued"
    )


def test_inspection_needs_a_token_and_is_per_user(virtual: Emulator, vclient: QStash) -> None:
    vclient.message.publish_json(url="https://example.com/x", body={}, delay=60)
    assert httpx.get(f"{virtual.url}/_emulator/messages").status_code == 401
    other = virtual.create_user()
    assert _get(virtual, "messages", token=other.token) == {"messages": []}
    assert len(_get(virtual, "messages")["messages"]) == 1


def test_reading_has_no_side_effects(virtual: Emulator, vclient: QStash) -> None:
    res = vclient.message.publish_json(url="https://example.com/x", body={}, delay=60)
    for _ in range(3):
        assert len(_get(virtual, "messages")["messages"]) == 1
    assert vclient.message.get(res.message_id).message_id == res.message_id
    assert virtual.attempts == []


def test_dead_letters_and_attempts(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    destination.script("/dead", (500, {"X-Why": "broken"}, b"nope"))
    res = vclient.message.publish(url=destination.url + "/dead", body="payload", retries=0)
    virtual.run_until_idle()
    dead = _get(virtual, "dlq")["messages"]
    assert len(dead) == 1
    assert dead[0]["messageId"] == res.message_id
    assert dead[0]["responseStatus"] == 500
    assert dead[0]["dlqId"]
    # Listing does not consume: the SDK still sees the entry.
    assert [m.message_id for m in vclient.dlq.list().messages] == [res.message_id]
    attempts = _get(virtual, "attempts", messageId=res.message_id)["attempts"]
    assert len(attempts) == 1
    attempt = attempts[0]
    assert attempt["outcome"] == "failed"
    assert attempt["reason"] == "status 500; no retries left (0 of 0 used)"
    assert attempt["request"]["body"] == "payload"
    assert attempt["request"]["headers"]["Upstash-Message-Id"] == res.message_id
    assert attempt["response"]["status"] == 500
    assert attempt["response"]["headers"]["X-Why"] == ["broken"]
    assert attempt["response"]["body"] == "nope"
    assert _get(virtual, "attempts", messageId="msg_unknown") == {"attempts": []}


def test_dead_letters_come_a_page_at_a_time(
    virtual: Emulator, vclient: QStash, destination: Destination, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They were all listed in one answer, however many and however big."""
    kb256 = 256 << 10
    destination.script("/dead", *[(500, {}, b"nope")] * 4)
    ids = [
        vclient.message.publish(
            url=destination.url + "/dead", body=bytes([97 + n]) * kb256, retries=0
        ).message_id
        for n in range(4)
    ]
    virtual.run_until_idle()
    oldest = _get(virtual, "dlq", count=3, order="earliestFirst")
    assert [m["messageId"] for m in oldest["messages"]] == ids[:3] and oldest["cursor"]
    rest = _get(virtual, "dlq", count=3, order="earliestFirst", cursor=oldest["cursor"])
    assert [m["messageId"] for m in rest["messages"]] == ids[3:] and "cursor" not in rest
    newest = _get(virtual, "dlq")  # 100 a page, newest first, as GET /v2/dlq
    assert [m["messageId"] for m in newest["messages"]] == ids[::-1] and "cursor" not in newest
    # A page ends early once it holds the byte cap (each letter carries 256 KB of body).
    monkeypatch.setattr(_store, "PAGE_BYTES", 2 * kb256)
    capped = _get(virtual, "dlq", count=1_000)
    assert len(capped["messages"]) == 2 and capped["cursor"]
    bad = httpx.get(f"{virtual.url}/_emulator/dlq", params={"count": 1_001}, headers=auth(virtual))
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid count: 1001 is out of range [1, 1000]"}


def test_attempts_come_a_page_at_a_time(
    virtual: Emulator, vclient: QStash, destination: Destination, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They were all listed in one answer: 606 attempts of 5 MB bodies answered 261 MB, and
    the dev server's RSS went from 551 to 1,258 MB while it made the answer."""
    kb256 = 256 << 10
    ids = [
        vclient.message.publish(
            url=destination.url + "/ok", body=bytes([97 + n]) * kb256
        ).message_id
        for n in range(4)
    ]
    virtual.run_until_idle()
    first = _get(virtual, "attempts", count=3)
    assert [a["messageId"] for a in first["attempts"]] == ids[:3] and first["cursor"]
    rest = _get(virtual, "attempts", count=3, cursor=first["cursor"])
    assert [a["messageId"] for a in rest["attempts"]] == ids[3:] and "cursor" not in rest
    assert rest["attempts"][0]["request"]["body"] == "d" * kb256
    whole = _get(virtual, "attempts")  # all the history keeps (1,000), as before
    assert [a["messageId"] for a in whole["attempts"]] == ids and "cursor" not in whole
    one = _get(virtual, "attempts", messageId=ids[2], count=1)
    assert [a["messageId"] for a in one["attempts"]] == [ids[2]] and "cursor" not in one
    # A page ends early once it holds the byte cap (each attempt carries 256 KB of body).
    monkeypatch.setattr(_store, "PAGE_BYTES", 2 * kb256)
    capped = _get(virtual, "attempts")
    assert [a["messageId"] for a in capped["attempts"]] == ids[:2] and capped["cursor"]
    after = _get(virtual, "attempts", cursor=capped["cursor"])
    assert [a["messageId"] for a in after["attempts"]] == ids[2:] and "cursor" not in after
    for params, error in [
        ({"count": 1_001}, "invalid count: 1001 is out of range [1, 1000]"),
        ({"cursor": "x"}, "invalid cursor: 'x' is not an integer"),
    ]:
        bad = httpx.get(f"{virtual.url}/_emulator/attempts", params=params, headers=auth(virtual))
        assert (bad.status_code, bad.json()) == (400, {"error": error})


def test_run_now_moves_a_delayed_message(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    start = virtual.clock.now_ms()
    res = vclient.message.publish_json(url=destination.url + "/later", body={}, delay=3_600)
    r = _post(virtual, f"run-now/{res.message_id}")
    assert r.json() == {"moved": "message", "id": res.message_id}
    virtual.wait_idle()
    assert virtual.clock.now_ms() == start  # no time passed: the message moved
    assert [a.message_id for a in virtual.attempts] == [res.message_id]
    assert len(destination.received) == 1


def test_run_now_moves_a_retry(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    destination.script("/r", (500, {}, b""))
    res = vclient.message.publish_json(url=destination.url + "/r", body={})
    virtual.wait_idle()
    assert _post(virtual, f"run-now/{res.message_id}").status_code == 200
    virtual.wait_idle()
    assert [a.outcome for a in virtual.attempts] == ["retry", "delivered"]
    assert _get(virtual, "messages") == {"messages": []}


def test_run_now_unknown_is_404(virtual: Emulator) -> None:
    r = _post(virtual, "run-now/msg_nope")
    assert r.status_code == 404
    assert r.json() == {"error": "no message or schedule 'msg_nope' for this user"}


def test_schedule_times_and_run_now(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    schedule_id = vclient.schedule.create(destination=destination.url + "/cron", cron="*/5 * * * *")
    times = _get(virtual, f"schedules/{schedule_id}/times", count=3)["times"]
    assert len(times) == 3
    assert all(t % 300_000 == 0 for t in times)
    assert times[1] - times[0] == times[2] - times[1] == 300_000
    assert 0 < times[0] - virtual.clock.now_ms() <= 300_000
    assert _post(virtual, f"run-now/{schedule_id}").json() == {
        "moved": "schedule",
        "id": schedule_id,
    }
    virtual.wait_idle()
    assert [a.schedule_id for a in virtual.attempts] == [schedule_id]
    # The next run was moved, not copied: the one after it is the cron's following time.
    assert _get(virtual, f"schedules/{schedule_id}/times", count=2)["times"] == times[1:]
    missing = httpx.get(
        f"{virtual.url}/_emulator/schedules/scd_nope/times",
        headers=auth(virtual),
    )
    assert missing.status_code == 404


def test_clock(virtual: Emulator, emulator: Emulator) -> None:
    assert _get(virtual, "clock") == {"now": virtual.clock.now_ms(), "virtual": True}
    assert _get(emulator, "clock")["virtual"] is False


@pytest.mark.parametrize("path", ["messages", "dlq", "attempts", "clock", "faults"])
def test_every_get_route_answers_json(virtual: Emulator, path: str) -> None:
    assert isinstance(_get(virtual, path), dict)


def test_python_inspector_describes_what_waits(virtual: Emulator) -> None:
    from qstash_emulator.services.inspection import format_ms

    with sdk(virtual) as client:
        res = client.message.publish_json(url="https://example.com/x", body={}, delay=90)
    waiting = virtual.call(virtual.inspector.waiting(virtual.user.user_id))
    assert [(w.message_id, w.state) for w in waiting] == [(res.message_id, "delayed")]
    due = virtual.clock.now_ms() + 90_000
    assert waiting[0].describe(virtual.clock.now_ms()) == (
        f"{res.message_id} POST https://example.com/x: delayed, next attempt in 1m30s "
        f"(at {format_ms(due)})"
    )


def test_a_page_of_messages_reads_only_the_records_it_shows(
    virtual: Emulator, vclient: QStash, destination: Destination, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard's page: counts by state come from indexes, records only for the page,
    so one page costs the same at 100 waiting messages as at 2,000."""
    real = Message.from_record.__func__  # type: ignore[attr-defined]
    decoded: list[str] = []

    def counting(cls: type[Message], record: dict[str, Any], body: bytes) -> Message:
        decoded.append(record["id"])
        return real(cls, record, body)  # type: ignore[no-any-return]

    destination.script("/fail", (500, {}, b"down"))
    failing = vclient.message.publish_json(url=destination.url + "/fail", body={}, retries=2)
    virtual.wait_idle()
    monkeypatch.setattr(Message, "from_record", classmethod(counting))
    for waiting in (100, 2_000):
        virtual.call(add_delayed(virtual, waiting))
        decoded.clear()
        page = _get(virtual, "messages", count=10, offset=20)
        assert len(decoded) == 10, f"{len(decoded)} records read for a page of 10"
        assert page["total"] == waiting + 1
        assert page["counts"] == {
            "pending": 0,
            "delayed": waiting,
            "retrying": 1,
            "in_flight": 0,
            "queued": 0,
        }
    only = _get(virtual, "messages", count=5, state="retrying")
    assert [m["messageId"] for m in only["messages"]] == [failing.message_id]
    assert only["messages"][0]["retried"] == 1
    vclient.message.cancel(failing.message_id)
    assert _get(virtual, "messages", count=1)["counts"]["retrying"] == 0


def test_a_claimed_message_counts_as_in_flight_before_its_attempt_starts(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    """Under load the engine claims more than it has started: a claimed message is in flight,
    never "queued" (which only a queue holds)."""
    from qstash_emulator.store.core import _CLAIMED

    res = client.message.publish_json(url=destination.url + "/later", body={}, delay="1h")
    # Internal: a claim no attempt has taken up yet is written in the store.
    store = emulator.runtime.store
    # A claim (made a minute ahead, so the sweep leaves it alone) no attempt has taken up yet.
    claimed = _CLAIMED + emulator.clock.now_ms() + 60_000
    emulator.call(store.redis.zadd(store.keyspace.due, {res.message_id: claimed}))
    page = _get(emulator, "messages", count=10)
    assert page["counts"] == {
        "pending": 0,
        "delayed": 0,
        "retrying": 0,
        "in_flight": 1,
        "queued": 0,
    }
    assert [m["state"] for m in page["messages"]] == ["in_flight"]
    assert [m["state"] for m in _get(emulator, "messages")["messages"]] == ["in_flight"]
