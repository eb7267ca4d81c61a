"""``/v2/events`` and ``/v2/logs``: states, filters, cursor and order (docs/behaviour.md#logs)."""

from __future__ import annotations

import base64

import httpx
import pytest
from qstash import QStash
from qstash.log import LogState

from qstash_emulator import Emulator

from .helpers import Destination, auth


def test_delivered_message_log_states(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    res = vclient.message.publish(url=destination.url + "/ok", body="hi", label="x")
    virtual.run_until_idle()
    logs = vclient.log.list(filter={"message_id": res.message_id}).logs
    assert [log.state for log in logs] == [LogState.DELIVERED, LogState.ACTIVE, LogState.CREATED]
    assert all(log.url == destination.url + "/ok" for log in logs)
    assert logs[0].time >= logs[1].time >= logs[2].time


def test_failed_message_log_rows_carry_the_response(
    virtual: Emulator, destination: Destination
) -> None:
    destination.script("/f", (500, {"X-A": "1"}, b"boom"), (502, {}, b"bad"))
    r = httpx.post(
        f"{virtual.url}/v2/publish/{destination.url}/f",
        content=b"b",
        headers={**auth(virtual), "Upstash-Retries": "1"},
    )
    virtual.run_until_idle()
    events = httpx.get(
        f"{virtual.url}/v2/events?order=earliestFirst", headers=auth(virtual)
    ).json()["events"]
    assert [e["state"] for e in events] == [
        "CREATED",
        "ACTIVE",
        "ERROR",
        "RETRY",
        "ACTIVE",
        "ERROR",
        "FAILED",
    ]
    error = events[2]
    assert error["messageId"] == r.json()["messageId"]
    assert error["responseStatus"] == 500
    assert base64.b64decode(error["responseBody"]) == b"boom"
    assert (
        error["responseHeader"]["X-A"] == ["1"]
        and error["responseHeaders"] == error["responseHeader"]
    )
    assert error["nextDeliveryTime"] == events[3]["nextDeliveryTime"] == events[4]["time"]
    assert base64.b64decode(error["body"]) == b"b"
    assert events[-1]["error"].startswith("status 502")


def test_state_filters_including_in_progress_and_both_cancel_spellings(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    destination.script("/s", (500, {}, b""))
    vclient.message.publish(url=destination.url + "/s", body="x", retries=1)
    doomed = vclient.message.publish(url=destination.url + "/z", body="x", delay="1h")
    vclient.message.cancel(doomed.message_id)
    virtual.run_until_idle()

    def states(query: str) -> list[str]:
        r = httpx.get(f"{virtual.url}/v2/logs?{query}", headers=auth(virtual))
        assert r.status_code == 200, r.text
        return [e["state"] for e in r.json()["logs"]]

    assert states("state=IN_PROGRESS") == ["ACTIVE", "RETRY", "ERROR", "ACTIVE"]
    assert states("state=CANCELLED") == states("state=CANCELED") == ["CANCELED"]
    assert states("state=DELIVERED&url=" + destination.url + "/s") == ["DELIVERED"]
    bad = httpx.get(f"{virtual.url}/v2/logs?state=LOST", headers=auth(virtual))
    assert bad.status_code == 400 and "state" in bad.json()["error"]


def test_cursor_pagination_visits_every_row_once(virtual: Emulator, vclient: QStash) -> None:
    for i in range(7):
        vclient.message.publish(url=f"https://example.com/{i}", body="x", delay="1h")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"count": "3", **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{virtual.url}/v2/events", params=params, headers=auth(virtual)).json()
        seen += [e["url"] for e in page["events"]]
        pages += 1
        cursor = page.get("cursor")
        if not cursor:
            break
        assert isinstance(cursor, str)
    assert pages == 3
    assert seen == [f"https://example.com/{i}" for i in reversed(range(7))]


@pytest.mark.parametrize("order", ["latestFirst", "earliestFirst"])
def test_cursor_pages_through_rows_written_together(
    virtual: Emulator, vclient: QStash, order: str
) -> None:
    # A fan-out to 7 endpoints stores its 7 CREATED rows in one write (one stream entry).
    vclient.url_group.upsert_endpoints(
        "fan", [{"url": f"https://example.com/{i}"} for i in range(7)]
    )
    vclient.message.publish(url_group="fan", body="x", delay="1h")
    vclient.message.publish(url="https://example.com/last", body="x", delay="1h")
    pages: list[list[str]] = []
    cursors: list[str] = []
    cursor = None
    while True:
        params = {"count": "3", "order": order, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{virtual.url}/v2/logs", params=params, headers=auth(virtual)).json()
        pages.append([e["url"] for e in page["logs"]])
        cursor = page.get("cursor")
        if not cursor:
            break
        cursors.append(cursor)
    oldest_first = [f"https://example.com/{i}" for i in range(7)] + ["https://example.com/last"]
    expected = oldest_first if order == "earliestFirst" else oldest_first[::-1]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [url for p in pages for url in p] == expected
    assert any("." in c for c in cursors)  # a page ended inside the fan-out's entry


def test_date_label_and_queue_filters(virtual: Emulator, vclient: QStash) -> None:
    t0 = virtual.clock.now_ms()
    vclient.message.publish(url="https://example.com/a", body="x", delay="1h", label="early")
    virtual.clock.advance(10)  # type: ignore[attr-defined]
    vclient.message.publish(url="https://example.com/b", body="x", delay="1h", label="late")
    late = vclient.log.list(filter={"from_time": t0 + 5_000}).logs
    assert [log.url for log in late] == ["https://example.com/b"]
    early = vclient.log.list(filter={"to_time": t0 + 5_000}).logs
    assert [log.url for log in early] == ["https://example.com/a"]
    labelled = vclient.log.list(filter={"label": "late"}).logs
    assert [log.url for log in labelled] == ["https://example.com/b"]


def test_bad_query_values_are_400(virtual: Emulator) -> None:
    for query, field in (
        ("count=0", "count"),
        ("count=x", "count"),
        ("order=sideways", "order"),
        ("fromDate=yesterday", "fromDate"),
    ):
        r = httpx.get(f"{virtual.url}/v2/logs?{query}", headers=auth(virtual))
        assert r.status_code == 400 and field in r.json()["error"], query


def test_rows_are_newest_first_by_time_with_attempts_in_flight(
    emulator: Emulator, destination: Destination
) -> None:
    """An attempt's ACTIVE row is written as it starts: with one attempt still in flight while
    others start and end, every row stays below the newer ones."""
    from .helpers import Held

    held = Held()
    destination.script("/slow", held)
    headers = auth(emulator)
    httpx.post(f"{emulator.url}/v2/publish/{destination.url}/slow", headers=headers)
    assert held.entered.wait(10)
    for i in range(3):
        httpx.post(f"{emulator.url}/v2/publish/{destination.url}/fast{i}", headers=headers)
        destination.wait(1, f"/fast{i}")
    held.release.set()
    emulator.wait_idle()
    r = httpx.get(f"{emulator.url}/v2/logs", headers=headers)
    rows = [(row["time"], row["state"], row["url"]) for row in r.json()["events"]]
    assert len(rows) == 12
    assert rows == sorted(rows, key=lambda row: -row[0])
