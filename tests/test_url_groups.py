"""URL groups through the official SDK: endpoints, fan-out, default headers.

The rules: docs/behaviour.md#url-groups.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from qstash import QStash
from qstash.errors import QStashError
from qstash.message import PublishUrlGroupResponse
from qstash.url_group import Endpoint

from qstash_emulator import Emulator

from .helpers import Destination, auth, sdk


def _get(emu: Emulator, path: str) -> httpx.Response:
    return httpx.get(f"{emu.url}{path}", headers=auth(emu))


def test_upsert_creates_the_group_and_get_list_show_it(emulator: Emulator, client: QStash) -> None:
    client.url_group.upsert_endpoints(
        "orders",
        [{"url": "https://a.example/hook", "name": "a"}, {"url": "https://b.example/hook"}],
    )
    group = client.url_group.get("orders")
    assert group.name == "orders"
    assert group.endpoints == [
        Endpoint(url="https://a.example/hook", name="a"),
        Endpoint(url="https://b.example/hook", name=None),
    ]
    assert [g.name for g in client.url_group.list()] == ["orders"]
    raw = _get(emulator, "/v2/topics/orders").json()
    assert raw == {
        "name": "orders",
        "createdAt": group.created_at,
        "updatedAt": group.updated_at,
        "endpoints": [
            {"url": "https://a.example/hook", "name": "a"},
            {"url": "https://b.example/hook"},
        ],
    }
    assert _get(emulator, "/v2/topics").json() == [raw]


def test_upsert_replaces_a_named_endpoint_and_keeps_urls_once(
    emulator: Emulator, client: QStash
) -> None:
    client.url_group.upsert_endpoints("g", [{"url": "https://a.example", "name": "a"}])
    created = client.url_group.get("g").created_at
    client.url_group.upsert_endpoints(
        "g",
        [
            {"url": "https://a2.example", "name": "a"},
            {"url": "https://u.example"},
            {"url": "https://u.example"},
        ],
    )
    client.url_group.upsert_endpoints("g", [{"url": "https://u.example", "name": "u"}])
    group = client.url_group.get("g")
    assert group.endpoints == [
        Endpoint(url="https://a2.example", name="a"),
        Endpoint(url="https://u.example", name="u"),
    ]
    assert group.created_at == created
    assert group.updated_at >= created


def test_remove_endpoints_by_url_or_name_and_the_last_one_deletes_the_group(
    emulator: Emulator, client: QStash
) -> None:
    client.url_group.upsert_endpoints(
        "g",
        [
            {"url": "https://a.example", "name": "a"},
            {"url": "https://b.example"},
            {"url": "https://c.example", "name": "c"},
        ],
    )
    client.url_group.remove_endpoints("g", [{"name": "a"}, {"url": "https://b.example"}])
    assert client.url_group.get("g").endpoints == [Endpoint(url="https://c.example", name="c")]
    client.url_group.remove_endpoints("g", [{"url": "https://c.example", "name": "c"}])
    r = _get(emulator, "/v2/topics/g")
    assert r.status_code == 404
    assert r.json() == {"error": "url group 'g' not found"}
    assert client.url_group.list() == []


def test_delete_group_succeeds_even_when_missing(emulator: Emulator, client: QStash) -> None:
    client.url_group.upsert_endpoints("g", [{"url": "https://a.example"}])
    client.url_group.delete("g")
    client.url_group.delete("g")
    client.url_group.delete("never-existed")
    with pytest.raises(QStashError, match="404"):
        client.url_group.get("g")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v2/topics/bad name/endpoints", {"endpoints": [{"url": "https://a"}]}, "group name"),
        ("/v2/topics/g/endpoints", {"endpoints": [{"url": "ftp://a"}]}, "endpoints[0].url"),
        ("/v2/topics/g/endpoints", {"endpoints": [{"name": "x"}]}, "endpoints[0].url"),
        ("/v2/topics/g/endpoints", {"endpoints": [{"url": "https://a", "name": "a b"}]}, "name"),
        ("/v2/topics/g/endpoints", {"endpoints": []}, "endpoints"),
        ("/v2/topics/g/endpoints", {"urls": ["https://a"]}, "endpoints"),
    ],
)
def test_bad_upserts_are_400_naming_the_field(
    emulator: Emulator, path: str, body: dict[str, Any], field: str
) -> None:
    r = httpx.post(f"{emulator.url}{path}", headers=auth(emulator), json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]
    assert _get(emulator, "/v2/topics").json() == []


def test_removing_from_a_missing_group_is_404(emulator: Emulator) -> None:
    r = httpx.request(
        "DELETE",
        f"{emulator.url}/v2/topics/nope/endpoints",
        headers=auth(emulator),
        json={"endpoints": [{"url": "https://a.example"}]},
    )
    assert r.status_code == 404
    r = httpx.request(
        "DELETE",
        f"{emulator.url}/v2/topics/nope/endpoints",
        headers=auth(emulator),
        json={"endpoints": [{}]},
    )
    assert r.status_code == 400 and "endpoints[0]" in r.json()["error"]


def test_publish_fans_out_one_message_per_endpoint(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    client.url_group.upsert_endpoints(
        "fan",
        [{"url": destination.url + "/one", "name": "first"}, {"url": destination.url + "/two"}],
    )
    res = client.message.publish_json(url_group="fan", body={"n": 1})
    assert isinstance(res, list)
    assert [(r.url, r.deduplicated) for r in res] == [
        (destination.url + "/one", False),
        (destination.url + "/two", False),
    ]
    got = {r.path: r for r in destination.wait(2)}
    assert set(got) == {"/one", "/two"}
    for path, item in zip(("/one", "/two"), res, strict=True):
        assert got[path].headers["upstash-topic-name"] == "fan"
        assert got[path].headers["upstash-message-id"] == item.message_id
        assert got[path].body == b'{"n": 1}'
    first = client.message.get(res[0].message_id)
    assert (first.url_group, first.endpoint) == ("fan", "first")
    raw = _get(emulator, f"/v2/messages/{res[1].message_id}").json()
    assert raw["topicName"] == "fan" and "endpointName" not in raw


def test_raw_group_response_is_a_top_level_array(
    emulator: Emulator, destination: Destination
) -> None:
    httpx.post(
        f"{emulator.url}/v2/topics/arr/endpoints",
        headers=auth(emulator),
        json={"endpoints": [{"url": destination.url + "/x"}]},
    )
    r = httpx.post(f"{emulator.url}/v2/publish/arr", headers=auth(emulator), content=b"b")
    assert r.status_code == 200
    (item,) = r.json()
    assert set(item) == {"messageId", "url"} and item["url"] == destination.url + "/x"


def test_only_the_failing_endpoint_is_retried(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    vclient.url_group.upsert_endpoints(
        "g", [{"url": destination.url + "/ok"}, {"url": destination.url + "/flaky"}]
    )
    destination.script("/flaky", (500, {}, b"down"))
    res = vclient.message.publish(url_group="g", body="x")
    assert isinstance(res, list)
    virtual.run_until_idle()
    paths = [r.path for r in destination.received]
    assert sorted(paths) == ["/flaky", "/flaky", "/ok"]
    by_id: dict[str, list[str]] = {a.message_id: [] for a in virtual.attempts}
    for attempt in virtual.attempts:
        by_id[attempt.message_id].append(attempt.outcome)
    ok_id, flaky_id = (r.message_id for r in res)
    assert by_id == {ok_id: ["delivered"], flaky_id: ["retry", "delivered"]}
    assert all(a.topic_name == "g" for a in virtual.attempts)


def test_group_dedup_is_per_endpoint(emulator: Emulator, client: QStash) -> None:
    client.url_group.upsert_endpoints(
        "d", [{"url": "http://127.0.0.1:9/a"}, {"url": "http://127.0.0.1:9/b"}]
    )
    first = client.message.publish(url_group="d", body="x", deduplication_id="once", delay=3600)
    again = client.message.publish(url_group="d", body="x", deduplication_id="once", delay=3600)
    assert isinstance(first, list) and isinstance(again, list)
    assert again == [
        PublishUrlGroupResponse(message_id=f.message_id, url=f.url, deduplicated=True)
        for f in first
    ]


def test_publish_to_a_missing_group_is_404(emulator: Emulator, client: QStash) -> None:
    with pytest.raises(QStashError, match="404"):
        client.message.publish(url_group="ghost", body="x")


def test_default_headers_apply_and_the_publish_wins(
    emulator: Emulator, client: QStash, destination: Destination
) -> None:
    client.url_group.upsert_endpoints("h", [{"url": destination.url + "/h"}])
    r = httpx.patch(
        f"{emulator.url}/v2/topics/h",
        headers=auth(emulator),
        json={
            "headers": {
                "Upstash-Retries": "0",
                "Upstash-Forward-Env": ["prod"],
                "x-team": "payments",
                "Upstash-Method": "PUT",
            }
        },
    )
    assert r.status_code == 200 and r.content == b""
    assert _get(emulator, "/v2/topics/h").json()["headers"] == {
        "Upstash-Retries": ["0"],
        "Upstash-Forward-Env": ["prod"],
        "X-Team": ["payments"],
        "Upstash-Method": ["PUT"],
    }
    (res,) = client.message.publish(url_group="h", body="b", headers={"Env": "dev"}, method="POST")
    (got,) = destination.wait(1, "/h")
    assert got.method == "POST"
    assert got.headers["env"] == "dev"
    assert got.headers["x-team"] == "payments"
    message = client.message.get(res.message_id)
    assert message.max_retries == 0
    assert message.headers == {"Env": ["dev"], "X-Team": ["payments"]}


def test_default_header_forward_sends_the_publish_request_headers(
    emulator: Emulator, destination: Destination
) -> None:
    httpx.post(
        f"{emulator.url}/v2/topics/wh/endpoints",
        headers=auth(emulator),
        json={"endpoints": [{"url": destination.url + "/wh"}]},
    )
    httpx.patch(
        f"{emulator.url}/v2/topics/wh",
        headers=auth(emulator),
        json={"headers": {"Upstash-Header-Forward": ["true"]}},
    )
    r = httpx.post(
        f"{emulator.url}/v2/publish/wh",
        headers={**auth(emulator), "X-Github-Event": "push"},
        content=b"{}",
    )
    assert r.status_code == 200, r.text
    (got,) = destination.wait(1, "/wh")
    assert got.headers["x-github-event"] == "push"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"headers": {"Upstash-Retries": "many"}}, "Upstash-Retries"),
        ({"headers": {"Upstash-Delay": ["soon"]}}, "Upstash-Delay"),
        ({"headers": {"X-A": 5}}, "headers.X-A"),
        ({"headers": ["Upstash-Retries"]}, "headers"),
        ({}, "headers"),
    ],
)
def test_bad_default_headers_are_400(
    emulator: Emulator, client: QStash, body: dict[str, Any], field: str
) -> None:
    client.url_group.upsert_endpoints("h", [{"url": "https://a.example"}])
    r = httpx.patch(f"{emulator.url}/v2/topics/h", headers=auth(emulator), json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]


def test_default_headers_on_a_missing_group_are_404(emulator: Emulator) -> None:
    r = httpx.patch(f"{emulator.url}/v2/topics/nope", headers=auth(emulator), json={"headers": {}})
    assert r.status_code == 404


def test_groups_are_per_user(emulator: Emulator, client: QStash) -> None:
    client.url_group.upsert_endpoints("mine", [{"url": "https://a.example"}])
    other = emulator.create_user()
    with sdk(emulator, other.token) as theirs:
        assert theirs.url_group.list() == []
        with pytest.raises(QStashError, match="404"):
            theirs.url_group.get("mine")


def test_read_only_token_cannot_change_groups(emulator: Emulator) -> None:
    token = emulator.create_user().readonly_token
    assert token
    r = httpx.post(
        f"{emulator.url}/v2/topics/g/endpoints",
        headers=auth(token),
        json={"endpoints": [{"url": "https://a.example"}]},
    )
    assert r.status_code == 403
    assert httpx.get(f"{emulator.url}/v2/topics", headers=auth(token)).json() == []


def test_group_and_endpoint_quotas_are_412() -> None:
    with Emulator(quota="free") as free, sdk(free) as client:
        client.url_group.upsert_endpoints("one", [{"url": "https://a.example"}])
        with pytest.raises(QStashError, match="412"):
            client.url_group.upsert_endpoints("two", [{"url": "https://a.example"}])
        many = [{"url": f"https://e{i}.example"} for i in range(100)]
        with pytest.raises(QStashError, match="412"):
            client.url_group.upsert_endpoints("one", many)
        assert len(client.url_group.get("one").endpoints) == 1
