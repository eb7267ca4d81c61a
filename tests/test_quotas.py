"""Plan limits: 412 for counts and parallelism, 429 for the daily message quota.

The rules: docs/behaviour.md#quotas.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from qstash import QStash
from qstash.errors import DailyMessageLimitExceededError, QStashError, RateLimitExceededError

from qstash_emulator import Emulator, VirtualClock

from .helpers import Destination, auth, sdk

_DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def free_session() -> Iterator[Emulator]:
    with Emulator(quota="free", clock=VirtualClock()) as emulator:
        yield emulator


@pytest.fixture
def free(free_session: Emulator) -> Emulator:
    """An emulator enforcing the free plan, on a virtual clock, reset for this test."""
    free_session.reset()
    return free_session


@pytest.fixture
def fclient(free: Emulator) -> Iterator[QStash]:
    with sdk(free) as client:
        yield client


# Internal: the daily count has no public route; these two read and spend it directly.
def _use(emu: Emulator, count: int, user: str | None = None) -> None:
    """Spend ``count`` of today's messages without publishing them."""
    emu.call(emu.runtime.quotas.consume_daily(user or emu.user.user_id, count))


def _used(emu: Emulator, user: str | None = None) -> int:
    """Today's messages spent."""
    return emu.call(emu.runtime.quotas.daily_used(user or emu.user.user_id))


def _next_midnight_s(emu: Emulator) -> int:
    return (emu.clock.now_ms() // _DAY_MS + 1) * _DAY_MS // 1000


def test_daily_quota_429_with_ratelimit_headers(free: Emulator, fclient: QStash) -> None:
    _use(free, 999)
    fclient.message.publish(url="http://127.0.0.1:9/last", body="x")
    with pytest.raises(DailyMessageLimitExceededError) as caught:
        fclient.message.publish(url="http://127.0.0.1:9/over", body="x")
    reset = str(_next_midnight_s(free))
    assert (caught.value.limit, caught.value.remaining, caught.value.reset) == ("1000", "0", reset)
    r = httpx.post(f"{free.url}/v2/publish/http://127.0.0.1:9/raw", headers=auth(free))
    assert r.status_code == 429
    assert r.headers["RateLimit-Limit"] == "1000"
    assert r.headers["RateLimit-Remaining"] == "0"
    assert r.headers["RateLimit-Reset"] == reset
    assert "Burst-RateLimit-Limit" not in r.headers
    assert set(r.json()) == {"error"} and "daily message limit" in r.json()["error"]
    assert _used(free) == 1000


def test_enqueue_counts_against_the_daily_quota(free: Emulator, fclient: QStash) -> None:
    _use(free, 1000)
    with pytest.raises(DailyMessageLimitExceededError):
        fclient.message.enqueue(queue="q", url="http://127.0.0.1:9/e", body="x")


def test_a_refused_group_publish_counts_nothing(free: Emulator) -> None:
    _use(free, 999)
    httpx.post(
        f"{free.url}/v2/topics/pair/endpoints",
        headers=auth(free),
        json={"endpoints": [{"url": "http://127.0.0.1:9/a"}, {"url": "http://127.0.0.1:9/b"}]},
    )
    r = httpx.post(f"{free.url}/v2/publish/pair", headers=auth(free))
    assert r.status_code == 429 and r.headers["RateLimit-Remaining"] == "1"
    assert _used(free) == 999


def test_quota_resets_at_utc_midnight_and_is_per_user(free: Emulator, fclient: QStash) -> None:
    _use(free, 1000)
    other = free.create_user()
    with sdk(free, other.token) as theirs:
        theirs.message.publish(url="http://127.0.0.1:9/other", body="x")
    assert isinstance(free.clock, VirtualClock)
    free.clock.set(_next_midnight_s(free) * 1000)
    fclient.message.publish(url="http://127.0.0.1:9/tomorrow", body="x")
    assert _used(free) == 1


def test_schedule_run_over_quota_records_the_error(free: Emulator, fclient: QStash) -> None:
    schedule_id = fclient.schedule.create(destination="http://127.0.0.1:9/s", cron="* * * * *")
    _use(free, 1000)
    free.run_until_idle(max_seconds=60)
    sched = fclient.schedule.get(schedule_id)
    assert sched.error is not None and "daily message limit" in sched.error
    assert sched.last_schedule_states is None and sched.last_schedule_time is not None
    assert [a for a in free.attempts if a.schedule_id == schedule_id] == []


def test_paid_plans_have_no_daily_quota(virtual: Emulator, vclient: QStash) -> None:
    _use(virtual, 10**7)
    assert vclient.message.publish(url="http://127.0.0.1:9/x", body="x").message_id


def test_schedule_count_is_412_past_the_plan(free: Emulator, fclient: QStash) -> None:
    for i in range(10):
        fclient.schedule.create(
            destination="http://127.0.0.1:9/s", cron="0 0 * * *", schedule_id=f"s{i}"
        )
    r = httpx.post(
        f"{free.url}/v2/schedules/http://127.0.0.1:9/s",
        headers={**auth(free), "Upstash-Cron": "0 0 * * *"},
    )
    assert r.status_code == 412
    assert set(r.json()) == {"error"} and "schedules" in r.json()["error"]
    with pytest.raises(QStashError, match="412"):
        fclient.schedule.create(destination="http://127.0.0.1:9/s", cron="0 0 * * *")
    fclient.schedule.create(
        destination="http://127.0.0.1:9/new", cron="0 1 * * *", schedule_id="s3"
    )
    assert len(fclient.schedule.list()) == 10
    fclient.schedule.delete("s0")
    fclient.schedule.create(destination="http://127.0.0.1:9/s", cron="0 0 * * *")


@pytest.mark.parametrize(
    ("method", "path", "headers", "field"),
    [
        (
            "POST",
            "/v2/publish/http://127.0.0.1:9/p",
            {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": "parallelism=11"},
            "Upstash-Flow-Control-Value",
        ),
        (
            "POST",
            "/v2/schedules/http://127.0.0.1:9/p",
            {
                "Upstash-Cron": "* * * * *",
                "Upstash-Flow-Control-Key": "k",
                "Upstash-Flow-Control-Value": "parallelism=11",
            },
            "Upstash-Flow-Control-Value",
        ),
        ("POST", "/v2/flowControl/k/pin?parallelism=11", {}, "parallelism"),
    ],
)
def test_parallelism_above_the_plan_is_412(
    free: Emulator, method: str, path: str, headers: dict[str, str], field: str
) -> None:
    r = httpx.request(method, free.url + path, headers={**auth(free), **headers})
    assert r.status_code == 412, r.text
    assert field in r.json()["error"] and "10" in r.json()["error"]
    ok = {k: v.replace("11", "10") for k, v in headers.items()}
    fine = httpx.request(method, free.url + path.replace("11", "10"), headers={**auth(free), **ok})
    assert fine.status_code == 200, fine.text


def test_burst_limit_maps_to_the_sdk_burst_error(free: Emulator, fclient: QStash) -> None:
    free.faults.add(kind="burst", path="/v2/schedules", times=1)
    with pytest.raises(RateLimitExceededError) as caught:
        fclient.schedule.list()
    assert caught.value.limit == "100" and caught.value.remaining == "0"
    assert fclient.schedule.list() == []


def test_batch_over_the_daily_quota_is_one_429(free: Emulator, fclient: QStash) -> None:
    _use(free, 998)
    with pytest.raises(DailyMessageLimitExceededError) as caught:
        fclient.message.batch([{"url": f"http://127.0.0.1:9/b{i}", "body": "x"} for i in range(3)])
    assert caught.value.remaining == "2"
    assert _used(free) == 998
    assert len(fclient.message.batch([{"url": "http://127.0.0.1:9/b", "body": "x"}] * 2)) == 2


def test_a_dead_letter_retry_is_a_publish_the_quota_counts(
    free: Emulator, destination: Destination
) -> None:
    """Retrying from the DLQ goes through the publisher's checks: one over the daily quota
    is a 429 that leaves the entry where it was; one within it counts."""
    destination.script("/dead", (500, {}, b"no"))
    r = httpx.post(
        f"{free.url}/v2/publish/{destination.url}/dead",
        headers={**auth(free), "Upstash-Retries": "0"},
    )
    assert r.status_code == 200, r.text
    free.run_until_idle()
    listed = httpx.get(f"{free.url}/v2/dlq", headers=auth(free)).json()["messages"]
    (dlq_id,) = [m["dlqId"] for m in listed]
    user = free.user.user_id
    _use(free, 999)
    refused = httpx.post(f"{free.url}/v2/dlq/retry/{dlq_id}", headers=auth(free))
    assert refused.status_code == 429, refused.text
    assert "daily" in refused.json()["error"]
    assert httpx.get(f"{free.url}/v2/dlq/{dlq_id}", headers=auth(free)).status_code == 200

    assert isinstance(free.clock, VirtualClock)
    free.clock.advance(86_400)  # a new day, a new quota
    retried = httpx.post(f"{free.url}/v2/dlq/retry/{dlq_id}", headers=auth(free))
    assert retried.status_code == 201, retried.text
    assert _used(free, user) == 1
