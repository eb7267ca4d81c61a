"""``POST /v2/batch`` through the official SDK and raw HTTP.

The rules: docs/behaviour.md#publish-responses.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from qstash import QStash
from qstash.message import BatchResponse, BatchUrlGroupResponse

from qstash_emulator import Emulator

from .helpers import Destination, auth


def _batch(emu: Emulator, body: Any) -> httpx.Response:
    return httpx.post(f"{emu.url}/v2/batch", headers=auth(emu), json=body)


def test_sdk_batch_mixes_urls_groups_and_queues(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    client.url_group.upsert_endpoints(
        "bg", [{"url": destination.url + "/g1"}, {"url": destination.url + "/g2"}]
    )
    res = client.message.batch(
        [
            {"url": destination.url + "/u", "body": "plain", "headers": {"X-N": "1"}},
            {"url_group": "bg", "body": "fan"},
            {"url": destination.url + "/q", "body": "queued", "queue": "bq", "retries": 0},
        ]
    )
    assert len(res) == 3
    single, group, queued = res
    assert isinstance(single, BatchResponse) and not single.deduplicated
    assert isinstance(group, list)
    assert [(g.url, g.deduplicated) for g in group] == [
        (destination.url + "/g1", False),
        (destination.url + "/g2", False),
    ]
    assert all(isinstance(g, BatchUrlGroupResponse) for g in group)
    assert isinstance(queued, BatchResponse)
    got = {r.path: r for r in destination.wait(4)}
    assert got["/u"].body == b"plain" and got["/u"].headers["x-n"] == "1"
    assert got["/g1"].headers["upstash-topic-name"] == "bg"
    assert got["/q"].headers["upstash-message-id"] == queued.message_id
    message = client.message.get(queued.message_id)
    assert (message.queue, message.max_retries) == ("bq", 0)
    assert client.queue.get("bq").parallelism == 1


def test_sdk_batch_json(client: QStash, destination: Destination) -> None:
    res = client.message.batch_json(
        [{"url": destination.url + "/j", "body": {"k": [1, 2]}, "delay": "0s"}]
    )
    (item,) = res
    assert isinstance(item, BatchResponse)
    (got,) = destination.wait(1, "/j")
    assert got.body == b'{"k": [1, 2]}'
    assert got.headers["content-type"] == "application/json"


def test_raw_response_shapes_and_null_fields(emulator: Emulator, destination: Destination) -> None:
    httpx.post(
        f"{emulator.url}/v2/topics/rg/endpoints",
        headers=auth(emulator),
        json={"endpoints": [{"url": destination.url + "/r1"}]},
    )
    r = _batch(
        emulator,
        [
            {"destination": destination.url + "/n", "headers": None, "body": None, "queue": None},
            {"destination": "rg", "body": "x"},
        ],
    )
    assert r.status_code == 200
    first, second = r.json()
    assert first == {"messageId": first["messageId"], "url": destination.url + "/n"}
    assert second == [{"messageId": second[0]["messageId"], "url": destination.url + "/r1"}]
    got = {x.path: x for x in destination.wait(2)}
    assert got["/n"].body == b""


def test_a_failed_entry_gets_an_error_and_the_others_go(
    emulator: Emulator, destination: Destination
) -> None:
    r = _batch(
        emulator,
        [
            {"destination": destination.url + "/a", "body": "a"},
            {"destination": "missing-group", "body": "b"},
            {"destination": destination.url + "/c", "headers": {"Upstash-Delay": "soon"}},
            {"destination": destination.url + "/d", "queue": "bad queue"},
            {"body": "no destination"},
            "not an object",
            {"destination": destination.url + "/g", "body": 5},
            {"destination": destination.url + "/h", "headers": {"X": 1}},
            {"destination": destination.url + "/e", "body": "e"},
        ],
    )
    assert r.status_code == 200
    out = r.json()
    assert len(out) == 9
    assert set(out[0]) == {"messageId", "url"} and set(out[8]) == {"messageId", "url"}
    errors = [o["error"] for o in out[1:8]]
    assert errors[0] == "url group 'missing-group' not found"
    assert "Upstash-Delay" in errors[1]
    assert "batch[3].queue" in errors[2]
    assert "batch[4].destination" in errors[3]
    assert "batch[5]" in errors[4]
    assert "batch[6].body" in errors[5]
    assert "batch[7].headers.X" in errors[6]
    assert sorted(x.path for x in destination.wait(2)) == ["/a", "/e"]


@pytest.mark.parametrize("body", [{"destination": "https://a.example"}, "x", 5])
def test_a_body_that_is_not_an_array_is_400(emulator: Emulator, body: Any) -> None:
    r = _batch(emulator, body)
    assert r.status_code == 400
    assert "JSON array" in r.json()["error"]


def test_invalid_json_and_empty_arrays(emulator: Emulator) -> None:
    r = httpx.post(
        f"{emulator.url}/v2/batch",
        headers=auth(emulator),
        content=b"[{",
    )
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    assert _batch(emulator, []).json() == []


def test_dedup_applies_per_entry(emulator: Emulator) -> None:
    entry = {
        "destination": "http://127.0.0.1:9/d",
        "headers": {"Upstash-Deduplication-Id": "same", "Upstash-Delay": "1h"},
        "body": "x",
    }
    other = {**entry, "headers": {"Upstash-Deduplication-Id": "other", "Upstash-Delay": "1h"}}
    first, second, third = _batch(emulator, [entry, entry, other]).json()
    assert second == {**first, "deduplicated": True}
    assert "deduplicated" not in third and third["messageId"] != first["messageId"]


def test_batch_needs_a_write_token(emulator: Emulator) -> None:
    token = emulator.create_user().readonly_token
    r = httpx.post(
        f"{emulator.url}/v2/batch",
        headers=auth(token),
        json=[{"destination": "https://a.example"}],
    )
    assert r.status_code == 403


def test_entry_over_the_size_limit_fails_alone(destination: Destination) -> None:
    with Emulator(max_message_size=4) as small:
        out = _batch(
            small,
            [
                {"destination": destination.url + "/big", "body": "12345"},
                {"destination": destination.url + "/small", "body": "1234"},
            ],
        ).json()
        assert "batch[0].body" in out[0]["error"] and "4 bytes" in out[0]["error"]
        assert set(out[1]) == {"messageId", "url"}
        (got,) = destination.wait(1, "/small")
        assert got.body == b"1234"


def test_an_entry_with_a_header_that_cannot_be_sent_is_refused_not_dead_lettered(
    emulator: Emulator, destination: Destination
) -> None:
    cb = destination.url + "/cb"
    r = _batch(
        emulator,
        [
            {"destination": destination.url + "/a", "headers": {"Upstash-Forward-X-A": "1\r\n2"}},
            {"destination": destination.url + "/b", "headers": {"Upstash-Forward-X\nB": "1"}},
            {
                "destination": destination.url + "/c",
                "headers": {"Upstash-Callback": cb, "Upstash-Callback-Forward-X-C": "a\rb"},
            },
            {"destination": destination.url + "/ok", "body": "ok"},
        ],
    )
    assert r.status_code == 200
    out = r.json()
    assert out[:3] == [
        {
            "error": "invalid Upstash-Forward-X-A: the value of 'x-a' "
            "has a control character ('\\r')"
        },
        {"error": "invalid 'upstash-forward-x\\nb': 'x\\nb' is not a valid HTTP header name"},
        {
            "error": "invalid Upstash-Callback-Forward-X-C: the value of 'x-c' "
            "has a control character ('\\r')"
        },
    ]
    assert [x.path for x in destination.wait(1)] == ["/ok"]
    creds = auth(emulator)
    assert httpx.get(f"{emulator.url}/v2/dlq", headers=creds).json()["messages"] == []
    waiting = httpx.get(f"{emulator.url}/_emulator/messages", headers=creds).json()
    assert waiting["messages"] == []
