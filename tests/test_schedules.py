"""Schedules through the official SDK: shapes, overwrite, pause/resume, runs on the clock.

The rules: docs/behaviour.md#schedules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from qstash import QStash
from qstash.errors import QStashError
from qstash.schedule import ScheduleState

from qstash_emulator import Emulator, VirtualClock
from qstash_emulator.services.schedules import parse_cron

from .helpers import Destination, auth, sdk

_MIN = 60_000


def _align(virtual: Emulator, offset_s: int = 30) -> int:
    """Move the virtual clock to ``offset_s`` past the next full hour; returns that time."""
    assert isinstance(virtual.clock, VirtualClock)
    hour = 3_600_000
    target = (virtual.clock.now_ms() // hour + 1) * hour + offset_s * 1_000
    return virtual.clock.set(target)


def _runs(virtual: Emulator, schedule_id: str) -> list[int]:
    return [a.started_at for a in virtual.attempts if a.schedule_id == schedule_id]


def test_create_and_get_with_every_field(virtual: Emulator, vclient: QStash) -> None:
    now = _align(virtual)
    schedule_id = vclient.schedule.create(
        destination="https://example.com/job?x=1",
        cron="*/10 * * * *",
        body='{"hello":"world"}',
        content_type="application/json",
        method="PUT",
        headers={"test-header": "test-value", "Upstash-Forward-bypass-tunnel-reminder": "c"},
        callback_headers={"Forward-Cb": "1"},
        retries=5,
        retry_delay="1000 * (1 + retried)",
        callback="https://example.com/cb",
        failure_callback="https://example.com/fail",
        delay=10,
        timeout=30,
        queue="scheduleQueue",
        flow_control={"key": "fk", "parallelism": 2, "rate": 5, "period": "1m"},
        label="nightly",
    )
    assert schedule_id.startswith("scd_")
    r = httpx.get(f"{virtual.url}/v2/schedules/{schedule_id}", headers=auth(virtual))
    assert r.status_code == 200
    assert r.json() == {
        "scheduleId": schedule_id,
        "cron": "*/10 * * * *",
        "destination": "https://example.com/job?x=1",
        "createdAt": now,
        "method": "PUT",
        "header": {
            "Bypass-Tunnel-Reminder": ["c"],
            "Content-Type": ["application/json"],
            "Test-Header": ["test-value"],
        },
        "body": '{"hello":"world"}',
        "retries": 5,
        "isPaused": False,
        "callerIP": "127.0.0.1",
        "callerIp": "127.0.0.1",
        "delay": 10,
        "timeout": 30,
        "queueName": "scheduleQueue",
        "retryDelayExpression": "1000 * (1 + retried)",
        "nextScheduleTime": now - 30_000 + 10 * _MIN,
        "label": "nightly",
        "labels": ["nightly"],
        "callback": "https://example.com/cb",
        "callbackHeader": {"Cb": ["1"]},
        "failureCallback": "https://example.com/fail",
        "flowControlKey": "fk",
        "parallelism": 2,
        "rate": 5,
        "period": 60,
    }
    sched = vclient.schedule.get(schedule_id)
    assert (sched.schedule_id, sched.cron, sched.retries, sched.delay) == (
        schedule_id,
        "*/10 * * * *",
        5,
        10,
    )
    assert sched.paused is False and sched.queue == "scheduleQueue"
    assert sched.caller_ip == "127.0.0.1" and sched.label == "nightly"
    assert sched.flow_control is not None and sched.flow_control.period == 60
    assert sched.last_schedule_states is None and sched.last_schedule_time is None


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("*/10 * * * * ", "*/10 * * * *"),
        ("\t0 4 * * 1-5\n", "0 4 * * 1-5"),
        ("CRON_TZ=Europe/Berlin  30 6 * * *", "CRON_TZ=Europe/Berlin  30 6 * * *"),
        ("@daily", "@daily"),
    ],
)
def test_cron_is_trimmed(given: str, stored: str) -> None:
    assert parse_cron(given).text == stored


def test_minimal_schedule_has_defaults_and_lists(vclient: QStash, virtual: Emulator) -> None:
    first = vclient.schedule.create(destination="https://example.com/a", cron="* * * * *")
    second = vclient.schedule.create_json(
        destination="https://example.com/b", cron="0 * * * *", body={"k": 1}
    )
    listed = vclient.schedule.list()
    assert sorted(s.schedule_id for s in listed) == sorted([first, second])
    a = vclient.schedule.get(first)
    assert (a.method, a.retries, a.body, a.headers, a.delay) == ("POST", 3, None, {}, None)
    b = vclient.schedule.get(second)
    assert b.body == '{"k": 1}' and b.headers == {"Content-Type": ["application/json"]}


def test_binary_body_is_base64(virtual: Emulator) -> None:
    r = httpx.post(
        f"{virtual.url}/v2/schedules/https://example.com/bin",
        headers={**auth(virtual), "Upstash-Cron": "* * * * *"},
        content=b"\xff\x00",
    )
    view = httpx.get(
        f"{virtual.url}/v2/schedules/{r.json()['scheduleId']}", headers=auth(virtual)
    ).json()
    assert view["bodyBase64"] == "/wA=" and "body" not in view


def test_overwrite_by_id_replaces_everything(vclient: QStash, virtual: Emulator) -> None:
    created = _align(virtual)
    vclient.schedule.create(
        destination="https://example.com/initial",
        cron="*/5 * * * *",
        schedule_id="my-job.v1",
        body="my-payload",
        retries=1,
        headers={"X-Old": "1"},
        callback="https://example.com/cb",
    )
    virtual.clock.advance(5)
    returned = vclient.schedule.create(
        destination="https://example.com/updated", cron="0 0 * * *", schedule_id="my-job.v1"
    )
    assert returned == "my-job.v1"
    (only,) = vclient.schedule.list()
    assert only.schedule_id == "my-job.v1"
    assert only.destination == "https://example.com/updated"
    assert only.cron == "0 0 * * *"
    assert (only.body, only.headers, only.callback, only.retries) == (None, {}, None, 3)
    assert only.created_at == created


def test_delete(vclient: QStash, virtual: Emulator) -> None:
    schedule_id = vclient.schedule.create(destination="https://example.com", cron="* * * * *")
    vclient.schedule.delete(schedule_id)
    assert vclient.schedule.list() == []
    r = httpx.get(f"{virtual.url}/v2/schedules/{schedule_id}", headers=auth(virtual))
    assert r.status_code == 404 and schedule_id in r.json()["error"]
    gone = httpx.delete(f"{virtual.url}/v2/schedules/{schedule_id}", headers=auth(virtual))
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({}, "Upstash-Cron"),
        ({"Upstash-Cron": ""}, "Upstash-Cron"),
        ({"Upstash-Cron": "* * * *"}, "Upstash-Cron"),
        ({"Upstash-Cron": "0 * * * * *"}, "Upstash-Cron"),
        ({"Upstash-Cron": "61 * * * *"}, "Upstash-Cron"),
        ({"Upstash-Cron": "every minute"}, "Upstash-Cron"),
        ({"Upstash-Cron": "CRON_TZ=Mars/Olympus 0 4 * * *"}, "Upstash-Cron"),
        ({"Upstash-Cron": "* * * * *", "Upstash-Schedule-Id": "bad id!"}, "Upstash-Schedule-Id"),
        ({"Upstash-Cron": "* * * * *", "Upstash-Queue-Name": "q/1"}, "Upstash-Queue-Name"),
        ({"Upstash-Cron": "* * * * *", "Upstash-Delay": "soon"}, "Upstash-Delay"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    virtual: Emulator, headers: dict[str, str], field: str
) -> None:
    r = httpx.post(
        f"{virtual.url}/v2/schedules/https://example.com",
        headers={**auth(virtual), **headers},
    )
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]
    assert httpx.get(f"{virtual.url}/v2/schedules", headers=auth(virtual)).json() == []


def test_bad_destination_is_400(virtual: Emulator) -> None:
    r = httpx.post(
        f"{virtual.url}/v2/schedules/ftp://example.com",
        headers={**auth(virtual), "Upstash-Cron": "* * * * *"},
    )
    assert r.status_code == 400 and "destination" in r.json()["error"]


def test_pause_and_resume_are_idempotent_by_patch_and_post(
    vclient: QStash, virtual: Emulator
) -> None:
    schedule_id = vclient.schedule.create(destination="https://example.com", cron="1 1 1 1 1")
    vclient.schedule.pause(schedule_id)
    vclient.schedule.pause(schedule_id)
    paused = vclient.schedule.get(schedule_id)
    assert paused.paused is True and paused.next_schedule_time is None
    vclient.schedule.resume(schedule_id)
    assert vclient.schedule.get(schedule_id).paused is False
    for action, paused_after in (("pause", True), ("resume", False), ("resume", False)):
        r = httpx.post(f"{virtual.url}/v2/schedules/{schedule_id}/{action}", headers=auth(virtual))
        assert (r.status_code, r.content) == (200, b"")
        assert vclient.schedule.get(schedule_id).paused is paused_after
    missing = httpx.patch(f"{virtual.url}/v2/schedules/nope/pause", headers=auth(virtual))
    assert missing.status_code == 404


def test_schedule_fires_on_the_virtual_clock_at_the_minute(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    start = _align(virtual, offset_s=20)
    schedule_id = vclient.schedule.create(
        destination=destination.url + "/tick?src=cron",
        cron="*/5 * * * *",
        body="tick",
        headers={"X-Job": "cleanup"},
    )
    virtual.run_until_idle(max_seconds=11 * 60)
    first = start - 20_000 + 5 * _MIN
    assert _runs(virtual, schedule_id) == [first, first + 5 * _MIN]
    got = destination.wait(2, "/tick")
    assert [r.headers["upstash-schedule-id"] for r in got] == [schedule_id] * 2
    assert got[0].body == b"tick" and got[0].query == "src=cron"
    assert got[0].headers["x-job"] == "cleanup"
    assert got[0].headers["upstash-message-id"] != got[1].headers["upstash-message-id"]
    sched = vclient.schedule.get(schedule_id)
    assert sched.last_schedule_time == first + 5 * _MIN
    assert sched.next_schedule_time == first + 10 * _MIN
    (message_id,) = sched.last_schedule_states or {}
    assert sched.last_schedule_states == {message_id: ScheduleState.SUCCESS}
    assert message_id == got[1].headers["upstash-message-id"]
    logs = vclient.log.list(filter={"schedule_id": schedule_id}).logs
    assert {e.state.value for e in logs} == {"CREATED", "ACTIVE", "DELIVERED"}


def test_paused_schedule_does_not_fire_until_resumed(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    start = _align(virtual, offset_s=0)
    schedule_id = vclient.schedule.create(destination=destination.url + "/p", cron="* * * * *")
    vclient.schedule.pause(schedule_id)
    virtual.run_until_idle(max_seconds=5 * 60)
    assert _runs(virtual, schedule_id) == []
    assert virtual.clock.now_ms() == start
    virtual.clock.advance(150)
    vclient.schedule.resume(schedule_id)
    assert vclient.schedule.get(schedule_id).next_schedule_time == start + 3 * _MIN
    virtual.run_until_idle(max_seconds=60)
    assert _runs(virtual, schedule_id) == [start + 3 * _MIN]


def test_cron_tz_is_honoured(virtual: Emulator, vclient: QStash) -> None:
    now = virtual.clock.now_ms()
    schedule_id = vclient.schedule.create(
        destination="https://example.com", cron="CRON_TZ=America/New_York 0 4 * * *"
    )
    sched = vclient.schedule.get(schedule_id)
    assert sched.cron == "CRON_TZ=America/New_York 0 4 * * *"
    zone = ZoneInfo("America/New_York")
    local = datetime.fromtimestamp(now / 1000, zone)
    expected = local.replace(hour=4, minute=0, second=0, microsecond=0)
    if expected <= local:
        expected = (expected + timedelta(days=1)).replace(hour=4)
    assert sched.next_schedule_time == int(expected.timestamp() * 1000)
    assert datetime.fromtimestamp(sched.next_schedule_time / 1000, UTC).hour in (8, 9)


def test_missed_runs_fire_once_and_next_is_from_now(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    start = _align(virtual, offset_s=0)
    schedule_id = vclient.schedule.create(destination=destination.url + "/m", cron="* * * * *")
    virtual.clock.advance(10 * 60 + 15)
    virtual.wait_idle()
    assert _runs(virtual, schedule_id) == [start + 10 * _MIN + 15_000]
    sched = vclient.schedule.get(schedule_id)
    assert sched.next_schedule_time == start + 11 * _MIN


def test_failed_run_is_recorded_as_fail(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    _align(virtual)
    destination.script("/f", (500, {}, b"down"))
    schedule_id = vclient.schedule.create(
        destination=destination.url + "/f", cron="* * * * *", retries=0
    )
    virtual.run_until_idle(max_seconds=60)
    states = vclient.schedule.get(schedule_id).last_schedule_states
    assert list((states or {}).values()) == [ScheduleState.FAIL]


def test_delay_applies_to_each_run(virtual: Emulator, vclient: QStash) -> None:
    start = _align(virtual, offset_s=0)
    schedule_id = vclient.schedule.create(
        destination="http://127.0.0.1:9/d", cron="* * * * *", delay="30s", retries=0
    )
    virtual.run_until_idle(max_seconds=90)
    (attempt,) = [a for a in virtual.attempts if a.schedule_id == schedule_id]
    assert attempt.started_at == start + _MIN + 30_000


def test_run_until_idle_without_bound_does_not_chase_schedules(
    virtual: Emulator, vclient: QStash
) -> None:
    vclient.schedule.create(destination="https://example.com", cron="* * * * *")
    before = virtual.clock.now_ms()
    virtual.run_until_idle()
    assert virtual.clock.now_ms() == before
    assert virtual.attempts == []


def test_trigger_runs_now_and_keeps_the_cron(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    start = _align(virtual, offset_s=10)
    schedule_id = vclient.schedule.create(destination=destination.url + "/t", cron="0 0 1 1 *")
    before = vclient.schedule.get(schedule_id).next_schedule_time
    # Internal: the trigger a schedule's timer fires (run-now moves the next time instead).
    ids = virtual.call(virtual.runtime.schedules.trigger(virtual.user.user_id, schedule_id))
    assert ids is not None and len(ids) == 1
    (got,) = destination.wait(1, "/t")
    assert got.headers["upstash-message-id"] == ids[0]
    assert got.headers["upstash-schedule-id"] == schedule_id
    sched = vclient.schedule.get(schedule_id)
    assert sched.last_schedule_time == start
    assert sched.next_schedule_time == before
    assert virtual.call(virtual.runtime.schedules.trigger(virtual.user.user_id, "nope")) is None


def test_queue_name_is_set_on_runs(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    _align(virtual)
    schedule_id = vclient.schedule.create(
        destination=destination.url + "/q", cron="* * * * *", queue="nightly"
    )
    virtual.run_until_idle(max_seconds=60)
    (attempt,) = [a for a in virtual.attempts if a.schedule_id == schedule_id]
    assert attempt.queue_name == "nightly"


def test_users_are_isolated_and_readonly_cannot_write(virtual: Emulator) -> None:
    other = virtual.create_user()
    r = httpx.post(
        f"{virtual.url}/v2/schedules/https://example.com",
        headers={**auth(virtual), "Upstash-Cron": "* * * * *"},
    )
    schedule_id = r.json()["scheduleId"]
    with sdk(virtual, other.token) as theirs:
        assert theirs.schedule.list() == []
        with pytest.raises(QStashError, match="404"):
            theirs.schedule.get(schedule_id)
        with pytest.raises(QStashError, match="404"):
            theirs.schedule.delete(schedule_id)
    assert other.readonly_token is not None
    denied = httpx.post(
        f"{virtual.url}/v2/schedules/https://example.com",
        headers={**auth(other.readonly_token), "Upstash-Cron": "* * * * *"},
    )
    assert denied.status_code == 403


def test_go_sdk_capitalised_path(virtual: Emulator) -> None:
    r = httpx.post(
        f"{virtual.url}/v2/Schedules/https://example.com/go",
        headers={**auth(virtual), "Upstash-Cron": "* * * * *"},
    )
    assert r.status_code == 200, r.text
    got = httpx.get(f"{virtual.url}/v2/Schedules/{r.json()['scheduleId']}", headers=auth(virtual))
    assert got.json()["destination"] == "https://example.com/go"


def test_group_destination_runs_once_per_endpoint(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    _align(virtual)
    with pytest.raises(QStashError, match="404"):
        vclient.schedule.create(destination="team", cron="* * * * *")
    vclient.url_group.upsert_endpoints(
        url_group="team",
        endpoints=[{"url": destination.url + "/g1"}, {"url": destination.url + "/g2"}],
    )
    schedule_id = vclient.schedule.create(destination="team", cron="* * * * *")
    virtual.run_until_idle(max_seconds=60)
    got = sorted(destination.wait(2), key=lambda r: r.path)
    assert [r.path for r in got] == ["/g1", "/g2"]
    assert {r.headers["upstash-topic-name"] for r in got} == {"team"}
    assert {r.headers["upstash-schedule-id"] for r in got} == {schedule_id}
    states = vclient.schedule.get(schedule_id).last_schedule_states or {}
    assert sorted(states) == sorted(r.headers["upstash-message-id"] for r in got)
    assert set(states.values()) == {ScheduleState.SUCCESS}


def test_runs_obey_the_schedules_flow_control(
    virtual: Emulator, vclient: QStash, destination: Destination
) -> None:
    start = _align(virtual, offset_s=0)
    schedule_id = vclient.schedule.create(
        destination=destination.url + "/fc",
        cron="* * * * *",
        flow_control={"key": "nightly", "rate": 1, "period": "3m"},
    )
    virtual.run_until_idle(max_seconds=4 * 60)
    # Runs at minutes 1-4; the key lets one through per 3 minutes, the rest wait in order.
    assert _runs(virtual, schedule_id) == [start + 1 * _MIN, start + 4 * _MIN]
    info = vclient.flow_control.get("nightly")
    assert (info.rate_max, info.rate_period, info.wait_list_size) == (1, 180, 2)


@pytest.mark.redis
def test_schedules_survive_a_restart(redis_url: str, destination: Destination) -> None:
    clock = VirtualClock()
    with Emulator(redis_url=redis_url, clock=clock) as first:
        first.reset()
        start = _align(first, offset_s=0)
        with sdk(first) as client:
            schedule_id = client.schedule.create(
                destination=destination.url + "/r", cron="*/2 * * * *"
            )
    with Emulator(redis_url=redis_url, clock=clock) as second:
        second.run_until_idle(max_seconds=120)
        assert _runs(second, schedule_id) == [start + 2 * _MIN]
        with sdk(second) as client:
            assert client.schedule.get(schedule_id).next_schedule_time == start + 4 * _MIN
        second.reset()
