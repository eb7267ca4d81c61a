"""Teardown checks: pending messages, unread dead letters, unused scripts; opt-outs; cleanup."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

LEAVES_WORK = """
import pytest

def test_pending(qstash):
    qstash.client().message.publish_json(url="https://example.com/later", body={}, delay=90)

def test_dead_letter(qstash):
    hook = qstash.endpoint("/dead").always(500)
    qstash.client().message.publish_json(url=hook.url, body={}, retries=0)
    qstash.run_until_idle()

def test_unused(qstash):
    qstash.endpoint("/never").respond(500, 200)
    qstash.fail_api("daily", path="/v2/publish")

def test_retrying(qstash):
    hook = qstash.endpoint("/again").respond(500)
    qstash.client().message.publish_json(url=hook.url, body={}, retries=2)
    qstash.wait_for(url=hook.url)
"""


def test_checks_fail_the_test_listing_what_was_left(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With CI set, pytest's short summary repeats each message whole: count the errors' own.
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    pytester.makepyfile(LEAVES_WORK)
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=4, errors=4)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_pending*",
            "qstash teardown checks failed:",
            "1 message(s) still pending (deliver them with qstash.run_until_idle(), or cancel "
            "them):",
            "  msg_* POST https://example.com/later: delayed, next attempt in 1m30s (at *)",
            "Opt out with @pytest.mark.qstash(checks=False)*",
        ]
    )
    # The message sends the reader to a file this installation has, at its section.
    found = [
        line.split("see 'Teardown checks' in ", 1)[1]
        for line in result.stdout.lines
        if "see 'Teardown checks' in " in line
    ]
    assert len(found) == 4
    assert "\n### Teardown checks\n" in Path(found[0]).read_text(encoding="utf-8")
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_dead_letter*",
            "1 dead letter(s) nobody looked at (check them with "
            "qstash.assert_dead_lettered(...) or qstash.dead_letters()):",
            "  msg_* http://*.endpoint.test/dead (last status 500)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unused*",
            "scripted responses never used:",
            "  http://*.endpoint.test/never: 500, 200",
            "  API fault: answer 429 (daily limit) to any method /v2/publish* for user *, "
            "1 more time(s)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_retrying*",
            "  msg_* POST http://*.endpoint.test/again: retrying (retried 1 of 2), "
            "next attempt in 12.182s (at *); last attempt: status 500",
        ]
    )


def test_opting_out(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        LEAVES_WORK.replace(
            "import pytest\n", "import pytest\npytestmark = pytest.mark.qstash(checks=False)\n"
        )
    )
    pytester.runpytest("-q").assert_outcomes(passed=4)
    pytester.makepyfile(LEAVES_WORK)
    pytester.runpytest("-q", "--qstash-no-checks").assert_outcomes(passed=4)


def test_keeping_some_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.qstash(checks=("dead_letters",))
        def test_only_dead_letters_checked(qstash):
            qstash.client().message.publish_json(url="https://example.com/x", body={}, delay=9)
            qstash.endpoint("/never").respond(500)
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_reading_dead_letters_acknowledges_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_read(qstash):
            hook = qstash.endpoint("/dead").always(500)
            qstash.client().message.publish_json(url=hook.url, body={}, retries=0)
            qstash.run_until_idle()
            assert len(qstash.dead_letters()) == 1
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_a_failing_test_gets_no_extra_teardown_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_fails(qstash):
            qstash.client().message.publish_json(url="https://example.com/x", body={}, delay=9)
            assert False, "the real failure"
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=1)
    assert "teardown checks failed" not in result.stdout.str()


def test_teardown_removes_the_tests_user_and_data(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pytest

        left = {}

        @pytest.mark.qstash(checks=False)
        def test_leave_things_behind(qstash):
            client = qstash.client()
            client.message.publish_json(url="https://example.com/x", body={}, delay=60)
            client.schedule.create(destination="https://example.com/s", cron="* * * * *")
            left.update(url=qstash.url, token=qstash.token, user=qstash.user.user_id)

        def test_nothing_survives(qstash):
            runtime = qstash.emulator.runtime
            assert left["user"] not in {u.user_id for u in runtime.users.all()}
            answer = httpx.get(
                f"{left['url']}/v2/schedules",
                headers={"Authorization": f"Bearer {left['token']}"},
            )
            assert answer.status_code == 401
            keys = qstash.emulator.call(runtime.store.redis.keys("*" + left["user"] + "*"))
            assert keys == []
            assert qstash.emulator.call(runtime.store.next_due()) is None
        """
    )
    pytester.runpytest("-q", "-p", "no:randomly").assert_outcomes(passed=2)
