"""Time under the test's control: exact backoff, advance, auto-advance, run-now, schedules."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_virtual_clock_honours_every_delay_exactly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time

        def test_default_backoff_to_the_second(qstash):
            start = qstash.now_ms
            hook = qstash.endpoint("/b").always(500)
            qstash.client().message.publish_json(url=hook.url, body={}, retries=3)
            wall = time.monotonic()
            qstash.run_until_idle()
            assert time.monotonic() - wall < 5  # 33 minutes of backoff, no waiting
            offsets = [(d.started_at - start) // 1000 for d in qstash.deliveries]
            # 12 s, then 2 min 28 s, then 30 min 8 s
            assert offsets == [0, 12, 12 + 148, 12 + 148 + 1808]
            qstash.assert_dead_lettered(url=hook.url)

        def test_retry_delay_expression(qstash):
            start = qstash.now_ms
            hook = qstash.endpoint("/e").respond(500, 500, 200)
            qstash.client().message.publish_json(
                url=hook.url, body={}, retry_delay="1000 * (1 + retried)"
            )
            qstash.run_until_idle()
            assert [d.started_at - start for d in qstash.deliveries] == [0, 1000, 3000]
            assert qstash.deliveries[1].delay_source == (
                "Upstash-Retry-Delay 1000 * (1 + retried) with retried=1"
            )

        def test_advance_delivers_in_order_each_at_its_time(qstash):
            start = qstash.now_ms
            hook = qstash.endpoint("/a")
            client = qstash.client()
            client.message.publish_json(url=hook.url, body={"n": 2}, delay=120)
            client.message.publish_json(url=hook.url, body={"n": 1}, delay=60)
            client.message.publish_json(
                url=hook.url, body={"n": 3}, not_before=start // 1000 + 180
            )
            assert qstash.advance(59).timestamp() * 1000 == start + 59_000
            assert not qstash.deliveries.called
            qstash.advance(61)
            assert [(d.json()["n"], d.started_at - start) for d in qstash.deliveries] == [
                (1, 60_000),
                (2, 120_000),
            ]
            qstash.advance(3600)
            assert qstash.deliveries.last.started_at == (start // 1000 + 180) * 1000

        def test_flow_control_windows(qstash):
            start = qstash.now_ms
            hook = qstash.endpoint("/fc")
            client = qstash.client()
            for n in range(3):
                client.message.publish_json(
                    url=hook.url, body={"n": n}, flow_control={"key": "k", "rate": 1, "period": 60}
                )
            qstash.run_until_idle()
            assert [d.started_at - start for d in hook.deliveries] == [0, 60_000, 120_000]

        def test_wait_for_jumps_to_what_is_due(qstash):
            start = qstash.now_ms
            hook = qstash.endpoint("/w")
            qstash.client().message.publish_json(url=hook.url, body={}, delay=86400)
            delivery = qstash.wait_for(url=hook.url)
            assert delivery.started_at - start == 86_400_000
            assert qstash.now_ms == start + 86_400_000
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=5)


def test_without_auto_advance_the_test_moves_the_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.qstash(auto_advance=False)
        def test_manual(qstash):
            hook = qstash.endpoint("/m")
            qstash.client().message.publish_json(url=hook.url, body={}, delay=30)
            with pytest.raises(AssertionError) as info:
                qstash.wait_for(url=hook.url, timeout=5)
            text = str(info.value)
            assert "the emulator is idle and nothing is due now (auto-advance is off" in text
            assert "Pending messages:" in text
            assert ": delayed, next attempt in 30s (at " in text
            qstash.advance(30)
            assert qstash.wait_for(url=hook.url).status == 200
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_run_now_moves_a_retry_or_a_delayed_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_retry(qstash):
            start = qstash.now_ms
            hook = qstash.endpoint("/r").respond(500)
            res = qstash.client().message.publish_json(url=hook.url, body={})
            qstash.wait_for(url=hook.url)
            [retrying] = qstash.messages("retrying")
            assert retrying.message_id == res.message_id
            assert retrying.due == start + 12_182
            qstash.run_now(res.message_id)
            assert qstash.now_ms == start  # moved, no time passed
            assert [d.outcome for d in qstash.deliveries] == ["retry", "delivered"]
            assert qstash.messages() == []

        def test_delayed(qstash):
            hook = qstash.endpoint("/d")
            res = qstash.client().message.publish_json(url=hook.url, body={}, delay=600)
            assert [w.state for w in qstash.messages()] == ["delayed"]
            qstash.run_now(res.message_id)
            assert qstash.deliveries.call_count == 1

        def test_unknown(qstash):
            with pytest.raises(AssertionError, match="no message or schedule 'msg_x'"):
                qstash.run_now("msg_x")
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=3)


def test_schedules_fire_on_the_virtual_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_cron(qstash):
            hook = qstash.endpoint("/cron")
            client = qstash.client()
            schedule_id = client.schedule.create(destination=hook.url, cron="*/10 * * * *")
            times = qstash.schedule_times(schedule_id, count=6)
            assert all(b - a == 600_000 for a, b in zip(times, times[1:]))
            qstash.advance(3600)
            runs = [d.started_at for d in hook.deliveries]
            assert runs == times
            assert {d.header("Upstash-Schedule-Id") for d in hook.deliveries} == {schedule_id}
            # run_until_idle never spins on a schedule: it is always due again.
            qstash.run_until_idle()
            assert hook.call_count == 6
            nightly = qstash.schedule_times(schedule_id, count=2)
            assert nightly[0] == times[-1] + 600_000
            qstash.run_now(schedule_id)
            assert hook.call_count == 7
            assert hook.last.started_at == qstash.now_ms  # the next run happened now...
            # ...instead of at its time (moved, never copied): the cron's following time is next.
            assert qstash.schedule_times(schedule_id, count=1) == nightly[1:]
            qstash.advance((nightly[1] - qstash.now_ms) / 1000 - 1)
            assert hook.call_count == 7
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_real_time_is_an_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.qstash(clock="real")

        def test_real(qstash):
            hook = qstash.endpoint("/real").respond(500)
            qstash.client().message.publish_json(url=hook.url, body={}, retry_delay="50")
            first = qstash.wait_for(url=hook.url)
            second = qstash.wait_for(url=hook.url, status=200)
            assert second.wall_started - first.wall_finished >= 0.045
            with pytest.raises(RuntimeError, match="advance[(][)] needs the virtual clock"):
                qstash.advance(1)

        def test_timeout_lists_pending(qstash):
            hook = qstash.endpoint("/late")
            qstash.client().message.publish_json(url=hook.url, body={}, delay=60)
            with pytest.raises(AssertionError) as info:
                qstash.wait_for(url=hook.url, timeout=0.2)
            text = str(info.value)
            assert text.startswith(
                "timed out after 0.2s waiting for 1 delivery(ies) matching: url="
            )
            assert "No delivery was attempted in this test." in text
            assert ": delayed, next attempt in " in text
            with pytest.raises(AssertionError, match="running until no message is pending"):
                qstash.run_until_idle(timeout=0.2)
            qstash.client().message.cancel_all()
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=2)


def test_each_test_starts_at_wall_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.parametrize("n", range(2))
        def test_three_days(qstash, n):
            assert abs(qstash.now_ms - time.time() * 1000) < 5_000
            qstash.advance(3 * 86_400)

        @pytest.mark.qstash(seed=1)
        @pytest.mark.parametrize("n", range(2))
        def test_seeded(qstash, n):
            assert qstash.now_ms == 1_767_225_600_000  # 2026-01-01T00:00:00Z
            qstash.advance(60)
        """
    )
    pytester.runpytest("-q", "-p", "no:randomly").assert_outcomes(passed=4)


def test_units_are_unmistakable(pytester: pytest.Pytester) -> None:
    """``now`` is a datetime, ``now_ms`` Unix ms (the unit of record times), and ``advance``
    takes seconds, a timedelta or a duration string: mixing units fails instead of passing."""
    pytester.makepyfile(
        """
        from datetime import UTC, datetime, timedelta

        import pytest

        def test_units(qstash):
            start, start_ms = qstash.now, qstash.now_ms
            assert start.tzinfo is UTC and start.timestamp() * 1000 == start_ms
            hook = qstash.endpoint("/u")
            qstash.client().message.publish_json(url=hook.url, body={"n": 1}, delay=90)
            assert qstash.advance(timedelta(seconds=89)) == start + timedelta(seconds=89)
            assert not hook.called
            assert qstash.advance("1s") == start + timedelta(seconds=90)
            assert hook.last.started_at == start_ms + 90_000 == qstash.now_ms
            assert isinstance(hook.last.body, bytes) and hook.last.text == '{"n": 1}'
            assert qstash.advance("1h30m") - start == timedelta(hours=1, minutes=30, seconds=90)
            assert qstash.advance(0.5) - start == timedelta(hours=1, minutes=31, seconds=30.5)
            with pytest.raises(TypeError):
                assert qstash.now - start >= 8 * 86_400  # seconds against a timedelta
            with pytest.raises(ValueError, match="'soon' is not a duration: give seconds"):
                qstash.advance("soon")
            with pytest.raises(ValueError, match="a clock only moves forward"):
                qstash.advance(timedelta(seconds=-1))
            with pytest.raises(TypeError, match="not True"):
                qstash.advance(True)
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)
