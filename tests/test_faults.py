"""API-side faults: 429 daily or burst, 5xx and dropped connections, by user, path and count."""

from __future__ import annotations

import httpx
import pytest
from qstash import QStash
from qstash.errors import DailyMessageLimitExceededError, QStashError, RateLimitExceededError

from qstash_emulator import Emulator
from qstash_emulator.services.faults import Fault

from .helpers import auth, sdk

URL = "http://example.com/hook"


@pytest.fixture
def bare(emulator: Emulator) -> QStash:
    """An SDK client that does not retry, so every fault surfaces."""
    client = QStash(emulator.token, base_url=emulator.url, retry=False)
    yield client
    client.http._client.close()


def test_daily_and_burst_limits_raise_the_sdks_distinct_errors(
    emulator: Emulator, bare: QStash
) -> None:
    emulator.faults.add(kind="daily", path="/v2/publish")
    emulator.faults.add(kind="burst", path="/v2/schedules")
    with pytest.raises(DailyMessageLimitExceededError) as daily:
        bare.message.publish_json(url=URL, body={"a": 1})
    assert daily.value.limit == "1000"
    assert daily.value.remaining == "0"
    with pytest.raises(RateLimitExceededError) as burst:
        bare.schedule.list()
    assert burst.value.limit == "100"
    # Each fired once; the next calls go through.
    assert bare.message.publish_json(url=URL, body={"a": 1}).message_id.startswith("msg_")
    assert bare.schedule.list() == []


def test_status_fault_fires_n_times_on_its_path_only(emulator: Emulator, bare: QStash) -> None:
    fault = emulator.faults.add(status=503, path="/v2/publish", times=2)
    assert bare.dlq.list().messages == []  # another path is untouched
    for _ in range(2):
        with pytest.raises(QStashError, match="Request failed with status: 503") as info:
            bare.message.publish_json(url=URL, body={})
        assert "injected fault: status 503" in str(info.value)
    assert fault.hits == 2 and fault.left == 0
    assert emulator.faults.remaining() == []
    bare.message.publish_json(url=URL, body={})


def test_method_filter(emulator: Emulator) -> None:
    emulator.faults.add(status=500, method="delete", path="/v2/messages", times=None)
    headers = auth(emulator)
    assert httpx.get(f"{emulator.url}/v2/messages/msg_x", headers=headers).status_code == 404
    assert httpx.delete(f"{emulator.url}/v2/messages/msg_x", headers=headers).status_code == 500
    assert httpx.delete(f"{emulator.url}/v2/messages/msg_x", headers=headers).status_code == 500


def test_dropped_connection_is_a_transport_error_and_the_sdk_retries_it(
    emulator: Emulator, bare: QStash
) -> None:
    emulator.faults.add(kind="drop", path="/v2/publish")
    # Incomplete body or reset, depending on timing: either way the connection dropped.
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        bare.message.publish_json(url=URL, body={})
    emulator.faults.add(kind="drop", path="/v2/publish")
    with sdk(emulator) as retrying:  # default SDK retries: the second try succeeds
        assert retrying.message.publish_json(url=URL, body={}).message_id


def test_faults_are_per_user(emulator: Emulator) -> None:
    other = emulator.create_user()
    emulator.faults.add(status=500, user=other.user_id, times=None)
    with sdk(emulator) as mine, sdk(emulator, other.token) as theirs:
        assert mine.message.publish_json(url=URL, body={}).message_id
        theirs.http._retry = {"retries": 0, "backoff": lambda _: 0}
        with pytest.raises(QStashError, match="500"):
            theirs.message.publish_json(url=URL, body={})


def test_latency_then_pass_through(emulator: Emulator) -> None:
    emulator.faults.add(kind="error", status=502, delay_s=0.05)
    headers = auth(emulator)
    response = httpx.get(f"{emulator.url}/v2/dlq", headers=headers)
    assert response.status_code == 502
    assert response.elapsed.total_seconds() >= 0.05


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="invalid kind 'slow'"):
        Fault(kind="slow")
    with pytest.raises(ValueError, match="invalid times 0"):
        Fault(times=0)
    with pytest.raises(ValueError, match="invalid status 200"):
        Fault(status=200)
    assert Fault(kind="daily").status == 429
    assert Fault(kind="burst", path="/v2/logs", times=3).describe() == (
        "answer 429 (burst limit) to any method /v2/logs*, 3 more time(s)"
    )


def test_faults_over_http(emulator: Emulator, bare: QStash) -> None:
    headers = auth(emulator)
    api = f"{emulator.url}/_emulator/faults"
    created = httpx.post(api, headers=headers, json={"kind": "daily", "path": "/v2/publish"})
    assert created.status_code == 201, created.text
    assert created.json() == {
        "kind": "daily",
        "status": 429,
        "path": "/v2/publish",
        "method": None,
        "left": 1,
        "description": (
            "answer 429 (daily limit) to any method /v2/publish* for user defaultUser, "
            "1 more time(s)"
        ),
    }
    # The control API itself is never faulted, even by a catch-all fault.
    httpx.post(api, headers=headers, json={"status": 500, "times": None})
    listed = httpx.get(api, headers=headers).json()["faults"]
    assert [f["left"] for f in listed] == [1, None]
    with pytest.raises(DailyMessageLimitExceededError):
        bare.message.publish_json(url=URL, body={})
    assert httpx.delete(api, headers=headers).json() == {"cleared": 1}
    assert bare.message.publish_json(url=URL, body={}).message_id


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"kind": "slow"}, "invalid fault: invalid kind 'slow'"),
        ({"status": "x"}, "invalid status: 'x'"),
        ({"colour": 1}, "invalid field: colour"),
        ([1], "invalid body: expected a JSON object"),
    ],
)
def test_bad_fault_requests_name_the_field(emulator: Emulator, body: object, error: str) -> None:
    headers = auth(emulator)
    response = httpx.post(f"{emulator.url}/_emulator/faults", headers=headers, json=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)


def test_reset_clears_faults(emulator: Emulator) -> None:
    emulator.faults.add(status=500, times=None)
    emulator.reset()
    assert emulator.faults.remaining() == []


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"X\r\nY": "1"}, "'X\\r\\nY' is not a valid HTTP header name"),
        ({"X A": "1"}, "'X A' is not a valid HTTP header name"),
        ({"X-A": "1\r\nSet-Cookie: a=b"}, "the value of 'X-A' has a control character ('\\r')"),
        ({"Content-Length": "5"}, "'Content-Length' is set by the server"),
    ],
)
def test_faults_refuse_headers_they_cannot_send(
    emulator: Emulator, headers: dict[str, str], error: str
) -> None:
    creds = auth(emulator)
    api = f"{emulator.url}/_emulator/faults"
    response = httpx.post(api, headers=creds, json={"status": 503, "headers": headers})
    assert response.status_code == 400
    assert response.json() == {"error": f"invalid fault: invalid headers: {error}"}
    with pytest.raises(ValueError, match="invalid headers"):
        Fault(headers=headers)
    # Nothing was programmed: the next API call is answered, not crashed on.
    assert httpx.get(api, headers=creds).json() == {"faults": []}
    assert httpx.get(f"{emulator.url}/v2/keys", headers=creds).status_code == 200
