"""What a long-running server keeps of big bodies: within the body budget, in bytes.

The rules: docs/behaviour.md#memory.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from qstash_emulator import Emulator
from qstash_emulator.store import core as _store

from .helpers import Destination, api, auth, wait_until

MB = 1 << 20
# A body of the tests: 256 KB (341 KB in base64).
KB256 = 256 << 10


@pytest.fixture(params=["memory", "redis"])
def small_budget(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """An emulator keeping 1.25 MB of bodies in its logs (and apart from them in recorded
    attempts), in memory and on a real Redis."""
    options: dict[str, Any] = {}
    if request.param == "redis":
        options = {"redis_url": request.getfixturevalue("redis_url"), "redis_prefix": "budget:"}
    with Emulator(body_budget=5 * KB256, **options) as emu:
        emu.reset()
        yield emu


def _publish_all(emu: Emulator, url: str, bodies: list[bytes]) -> list[str]:
    ids = []
    for body in bodies:
        r = httpx.post(f"{emu.url}/v2/publish/{url}", headers=auth(emu), content=body)
        assert r.status_code == 200, r.text
        ids.append(r.json()["messageId"])
    return ids


def _all_rows(emu: Emulator) -> list[dict[str, Any]]:
    """Every log row, page after page, oldest first."""
    rows: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(100):
        params = {"count": "1000", "order": "earliestFirst"}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{emu.url}/v2/logs", params=params, headers=auth(emu)).json()
        rows += page["logs"]
        cursor = page.get("cursor") or ""
        if not cursor:
            return rows
    raise AssertionError("more than 100 pages")


def _delivered(emu: Emulator, ids: list[str]) -> None:
    def done() -> bool:
        return {r["messageId"] for r in _all_rows(emu) if r["state"] == "DELIVERED"} >= set(ids)

    wait_until(done, 20, "every message to be delivered")


async def _log_bytes(emu: Emulator, user: str) -> int:
    """Bytes the store holds for ``user``'s logs: the rows, and the bodies they refer to."""
    # Internal: the bytes the store holds have no public surface (the body budget rule).
    store = emu.runtime.store
    keyspace = store.keyspace
    entries = await store.redis.xrange(keyspace.logs(user), "-", "+")
    rows = sum(len(v) for _, fields in entries for v in fields.values())
    bodies = 0
    async for key in store.redis.scan_iter(match=keyspace.body(user, "*"), count=1_000):
        bodies += await store.redis.strlen(key)
    return int(rows + bodies)


def test_log_bodies_stay_within_the_budget_oldest_dropped_first(
    small_budget: Emulator, destination: Destination
) -> None:
    """10 messages of 256 KB write 30 rows showing a body: 10 MB as rows embedded it; the
    budget keeps the newest 1.25 MB: 2 messages' bodies (341 KB in base64 for their rows, and
    256 KB each for their own grace), and marks the others dropped."""
    emu = small_budget
    bodies = [bytes([65 + n]) * KB256 for n in range(10)]
    ids = _publish_all(emu, destination.url + "/ok", bodies)
    _delivered(emu, ids)
    kept = emu.call(_log_bytes(emu, "defaultUser"))
    assert kept <= 5 * KB256 + 64 * 1024, f"{kept / MB:.2f} MB kept for a 1.25 MB budget"
    rows = _all_rows(emu)
    assert len(rows) == 30
    by_message = {i: [r for r in rows if r["messageId"] == i] for i in ids}
    for message_id, body in zip(ids[-2:], bodies[-2:], strict=True):
        assert all(base64.b64decode(r["body"]) == body for r in by_message[message_id])
        assert not any("bodyDropped" in r for r in by_message[message_id])
    for message_id in ids[:7]:
        assert all(r["bodyDropped"] is True and "body" not in r for r in by_message[message_id])


def test_a_page_of_logs_stops_at_its_byte_cap_and_gives_a_cursor(
    emulator: Emulator, destination: Destination, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_store, "PAGE_BYTES", 3 * KB256)
    bodies = [bytes([97 + n]) * KB256 for n in range(4)]
    ids = _publish_all(emulator, destination.url + "/ok", bodies)
    _delivered(emulator, ids)
    first = httpx.get(f"{emulator.url}/v2/logs", params={"count": "1000"}, headers=auth(emulator))
    page = first.json()
    # Each row shows 341 KB of base64: the page ends with the row that passes 768 KB (the
    # answer holds its rows twice, under "logs" and "events").
    assert len(page["logs"]) == 3 and page["cursor"]
    assert len(first.content) < 9 * KB256
    rows = _all_rows(emulator)
    assert len(rows) == 12 and len({(r["messageId"], r["state"]) for r in rows}) == 12


def test_recorded_attempts_keep_bodies_within_the_budget(
    small_budget: Emulator, destination: Destination
) -> None:
    """6 answers of 256 KB: the attempts keep the newest 1.25 MB (5 answers); older ones show as
    dropped in /_emulator/attempts and, being the same objects, in ``Emulator.attempts``."""
    emu = small_budget
    answer = b"r" * KB256
    destination.script("/big", *[(200, {}, answer)] * 6)
    ids = _publish_all(emu, destination.url + "/big", [b"x"] * 6)
    wait_until(lambda: len(emu.attempts) == 6, 20, "six attempts")
    # Internal: the attempts' byte count has no public surface (the budget rule).
    assert emu.runtime.history.body_bytes <= 5 * KB256
    views = httpx.get(f"{emu.url}/_emulator/attempts", headers=auth(emu)).json()["attempts"]
    by_id = {v["messageId"]: v for v in views}
    dropped = [by_id[i]["response"].get("bodyDropped", False) for i in ids]
    assert dropped == [True, False, False, False, False, False]
    assert by_id[ids[-1]]["response"]["body"] == answer.decode()
    assert "body" not in by_id[ids[0]]["response"]
    assert by_id[ids[0]]["request"]["body"] == "x"  # small bodies are not counted
    in_process = {a.message_id: a for a in emu.attempts}
    assert in_process[ids[0]].response is not None
    assert in_process[ids[0]].response.body_dropped and in_process[ids[0]].response.body == b""


def test_dead_letters_are_kept_for_the_plans_retention(
    small_budget: Emulator, destination: Destination
) -> None:
    """payg keeps dead letters 7 days (by the wall clock: a dead letter's id is its time)."""
    emulator = small_budget
    destination.script("/down", (500, {}, b"down"))
    r = httpx.post(
        f"{emulator.url}/v2/publish/{destination.url}/down",
        headers={**auth(emulator), "Upstash-Retries": "0"},
        content=b"x",
    )
    assert r.status_code == 200

    def dlq() -> list[dict[str, Any]]:
        answer = httpx.get(f"{emulator.url}/v2/dlq", headers=auth(emulator)).json()
        return list(answer["messages"])

    wait_until(lambda: len(dlq()) == 1, 15, "the dead letter")
    week = 7 * 86_400_000
    now = int(time.time() * 1_000)
    # Internal: the retention trim runs on a timer; called here at a chosen time.
    store = emulator.runtime.store
    emulator.call(store.trim_dead_letters(now + week - 60_000))
    assert len(dlq()) == 1
    emulator.call(store.trim_dead_letters(now + week + 60_000))
    assert dlq() == []


def test_dead_letters_response_bodies_share_the_budget(
    small_budget: Emulator, destination: Destination
) -> None:
    """Dead letters keep their message body whole (to be retried); their long response
    bodies are kept within the budget with the logs' bodies, the oldest dropped first."""
    emu = small_budget
    answers = [bytes([48 + n]) * KB256 for n in range(6)]
    destination.script("/down", *[(500, {}, a) for a in answers])
    ids = []
    for n in range(6):
        r = httpx.post(
            f"{emu.url}/v2/publish/{destination.url}/down",
            headers={**auth(emu), "Upstash-Retries": "0"},
            content=b"message %d" % n,
        )
        ids.append(r.json()["messageId"])
        # One at a time: each answer is the next scripted one, in order.
        wait_until(lambda done=n + 1: _dlq_count(emu) == done, 15, f"dead letter {n + 1}")
    letters = httpx.get(
        f"{emu.url}/v2/dlq", params={"order": "earliestFirst"}, headers=auth(emu)
    ).json()["messages"]
    assert [d["messageId"] for d in letters] == ids
    assert [d["body"] for d in letters] == [f"message {n}" for n in range(6)]
    # Each failure stored its answer twice: raw for the dead letter, base64 for the ERROR
    # row (597 KB together); 1.25 MB holds the newest two of each.
    assert [d.get("responseBodyDropped", False) for d in letters] == [True] * 4 + [False] * 2
    assert [d["responseBody"] for d in letters[4:]] == [a.decode() for a in answers[4:]]
    assert all("responseBody" not in d for d in letters[:4])
    retried = httpx.post(f"{emu.url}/v2/dlq/retry/{letters[0]['dlqId']}", headers=auth(emu))
    assert retried.status_code == 201
    destination.wait(7, "/down")
    assert destination.received[-1].body == b"message 0"


def _dlq_count(emu: Emulator) -> int:
    return len(httpx.get(f"{emu.url}/v2/dlq", headers=auth(emu)).json()["messages"])


async def _message_bytes(emu: Emulator, ids: list[str]) -> int:
    """Bytes the messages' own hashes hold (their record and body fields)."""
    # Internal: what a finished message keeps during its grace has no public surface.
    store = emu.runtime.store
    sizes = [await store.redis.hstrlen(store.keyspace.message(i), "b") for i in ids]
    return int(sum(sizes))


def test_finished_messages_keep_big_bodies_within_the_budget(
    small_budget: Emulator, destination: Destination
) -> None:
    """A delivered message answers GET /v2/messages/{id} for its grace: its big body is kept in
    the budget too, the newest whole, the oldest marked dropped (before, each kept its body
    for the whole grace, outside the budget: 20 publishes of 5 MB held 100 MB more RSS)."""
    emu = small_budget
    bodies = [bytes([97 + n]) * KB256 for n in range(10)]
    ids = _publish_all(emu, destination.url + "/ok", bodies)
    _delivered(emu, ids)
    assert emu.call(_message_bytes(emu, ids)) == 0
    with api(emu) as http:
        newest = http.get(f"/v2/messages/{ids[-1]}").json()
        assert newest["body"] == bodies[-1].decode() and "bodyDropped" not in newest
        oldest = http.get(f"/v2/messages/{ids[0]}").json()
        assert oldest["body"] == "" and oldest["bodyDropped"] is True
