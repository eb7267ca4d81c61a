"""``pytest --qstash-contract``: the file is the same bytes whatever the run, the test order
and the number of xdist workers; a run that differs fails; the update flag rewrites it."""

from __future__ import annotations

import genson  # noqa: F401
import jsonschema  # noqa: F401
import pytest
import qstash  # noqa: F401

# Imported here, what the in-process runs below use stays loaded between them (pytester
# drops what a run imported, and each run would import it again).

pytest_plugins = ["pytester"]

SUITE = """
import os
import time
import uuid

ORDERS = "https://shop.example.com/orders/{}"


def _publish(qstash, url, body, **options):
    qstash.client().message.publish_json(url=url, body=body, **options)


def test_order_1(qstash):
    qstash.endpoint(ORDERS.format(1), 200)
    _publish(qstash, ORDERS.format(1), {"id": 1, "ref": str(uuid.uuid4()), "at": time.time()})
    qstash.run_until_idle()


def test_order_2(qstash):
    qstash.endpoint(ORDERS.format(2), 200)
    _publish(qstash, ORDERS.format(2), {"id": 2, "ref": str(uuid.uuid4()), "note": "gift"})
    qstash.run_until_idle()


def test_a_local_endpoint(qstash):
    jobs = qstash.endpoint("/jobs/{}".format(uuid.uuid4()))
    _publish(qstash, jobs.url, {"job": "resize"}, retries=1, delay=30)
    qstash.run_until_idle()


def test_a_queue(qstash):
    qstash.endpoint("https://mail.example.com/send", 200)
    qstash.client().message.enqueue_json(
        queue="mail", url="https://mail.example.com/send", body={"to": "a@example.com"}
    )
    qstash.run_until_idle()


def test_a_schedule(qstash):
    qstash.client().schedule.create(
        destination="https://shop.example.com/nightly", cron="0 3 * * *"
    )


def test_no_qstash():
    pass
"""

CONFTEST = """
import os


def pytest_collection_modifyitems(items):
    if os.environ.get("REVERSE"):
        items.reverse()
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_shop=SUITE)
    pytester.makeconftest(CONFTEST)
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--qstash-contract", "c.json", *args)


def test_the_file_is_the_same_whatever_the_run_and_order(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _run(suite)
    first.assert_outcomes(passed=6)
    first.stdout.fnmatch_lines(["c.json: written (4 entries)"])
    written = (suite.path / "c.json").read_bytes()
    assert b"msg_" not in written and b"pytest_" not in written and b"uuid" not in written

    monkeypatch.setenv("REVERSE", "1")
    again = _run(suite, "--qstash-contract-update")
    again.stdout.fnmatch_lines(["c.json: rewritten (4 entries)"])
    assert (suite.path / "c.json").read_bytes() == written

    check = _run(suite)
    assert check.ret == 0
    check.stdout.fnmatch_lines(["c.json: this run matches (4 entries)"])


@pytest.mark.slow
def test_xdist_workers_write_the_same_file(suite: pytest.Pytester) -> None:
    _run(suite).assert_outcomes(passed=6)
    written = (suite.path / "c.json").read_bytes()
    for args in (("-n", "2", "--qstash-contract-update"), ("-n", "2", "-p", "no:randomly")):
        result = _run(suite, *args)
        assert result.ret == 0, result.stdout.str()
        assert (suite.path / "c.json").read_bytes() == written
    result.stdout.fnmatch_lines(["c.json: this run matches (4 entries)"])
    partial = _run(suite, "-n", "2", "-k", "not queue")  # workers deselect, and say so
    assert partial.ret == 0, partial.stdout.str()
    partial.stdout.fnmatch_lines(["c.json: this run matches (4 entries)", "1 entry not exercised*"])


def test_a_run_that_differs_fails_and_leaves_the_file(suite: pytest.Pytester) -> None:
    _run(suite).assert_outcomes(passed=6)
    written = (suite.path / "c.json").read_bytes()
    suite.makepyfile(
        test_shop=SUITE.replace("retries=1, delay=30", "retries=4, delay=30").replace(
            "def test_a_queue", "def _not_a_test"
        )
    )
    result = _run(suite)
    result.assert_outcomes(passed=5)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "c.json: this run's use of QStash differs from the contract*",
            "changed: POST http://pytest-{id}.endpoint.test/jobs/{id} (publish), sent by "
            "test_shop.py::test_a_local_endpoint",
            '  options no longer used: {"delay":true,"retries":1}',
            '  options new: {"delay":true,"retries":4}',
            "removed: POST https://mail.example.com/send (publish): no test of this run sent it",
        ]
    )
    assert (suite.path / "c.json").read_bytes() == written


def test_a_partial_run_keeps_what_it_did_not_reach(suite: pytest.Pytester) -> None:
    _run(suite).assert_outcomes(passed=6)
    written = (suite.path / "c.json").read_bytes()
    for args in ((), ("--qstash-contract-update",)):
        result = _run(suite, "-k", "not queue", *args)
        result.assert_outcomes(passed=5, deselected=1)
        assert result.ret == 0
        result.stdout.fnmatch_lines(
            [
                "c.json: *(4 entries)",
                "1 entry not exercised by this partial run (some tests named, deselected, or a "
                "stop before the end) kept as committed",
            ]
        )
        assert (suite.path / "c.json").read_bytes() == written


OTHER = """
def test_a_refund(qstash):
    qstash.endpoint("https://shop.example.com/refunds", 200)
    qstash.client().message.publish_json(url="https://shop.example.com/refunds", body={"id": 1})
    qstash.run_until_idle()
"""


def test_a_run_of_some_files_or_tests_keeps_what_it_did_not_reach(
    suite: pytest.Pytester,
) -> None:
    """A run naming test files reported every entry of the others as removed, and failed."""
    suite.makepyfile(test_refunds=OTHER)
    _run(suite).assert_outcomes(passed=7)
    written = (suite.path / "c.json").read_bytes()
    for args in (
        ("test_refunds.py",),
        ("test_refunds.py", "--qstash-contract-update"),
        ("test_shop.py::test_a_queue", "test_refunds.py::test_a_refund"),
    ):
        result = _run(suite, *args)
        assert result.ret == 0, result.stdout.str()
        result.stdout.fnmatch_lines(
            ["c.json: * (5 entries)", "*entries not exercised by this partial run*"]
        )
        result.stdout.no_fnmatch_line("removed:*")
        assert (suite.path / "c.json").read_bytes() == written


def test_a_run_naming_the_whole_suite_is_no_partial_run(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_refunds=OTHER)
    suite.makeini("[pytest]\ntestpaths = test_*.py\n")
    _run(suite).assert_outcomes(passed=7)
    suite.makepyfile(test_refunds="def test_no_refunds():\n    pass\n")
    for args in ((), (".",), ("test_shop.py", "test_refunds.py")):
        result = _run(suite, *args)
        assert result.ret == 1, result.stdout.str()
        result.stdout.fnmatch_lines(
            ["removed: POST https://shop.example.com/refunds (publish): no test of this run*"]
        )


def test_a_run_stopped_early_keeps_what_it_did_not_reach(suite: pytest.Pytester) -> None:
    _run(suite).assert_outcomes(passed=6)
    written = (suite.path / "c.json").read_bytes()
    suite.makepyfile(
        test_shop=SUITE.replace(
            "def test_a_queue(qstash):", "def test_a_queue(qstash):\n    assert 0"
        )
    )
    result = _run(suite, "-x", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["c.json: this run matches (4 entries)", "2 entries not exercised*"]
    )
    assert (suite.path / "c.json").read_bytes() == written


def test_a_file_that_is_not_a_contract_fails_the_run(suite: pytest.Pytester) -> None:
    (suite.path / "c.json").write_text("[]")
    result = _run(suite)
    result.assert_outcomes(passed=6)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["cannot check the contract: c.json: not a qstash contract (version 1)"]
    )


def test_without_the_option_nothing_is_written(suite: pytest.Pytester) -> None:
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=6)
    assert not (suite.path / "c.json").exists()


def test_contract_path_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--qstash-contract=PATH*", "*--qstash-contract-update*"])


def test_the_session_wide_environment_records_too(pytester: pytest.Pytester) -> None:
    """With ``qstash_env = session`` the emulator starts before conftest.py: its recorder
    comes from the same run, and binds each test's user as the fixture makes it."""
    pytester.makeini("[pytest]\nqstash_env = session\n")
    pytester.makepyfile(
        test_app="""
        import os
        from qstash import QStash

        def test_publish(qstash):
            qstash.endpoint("https://app.example.com/hook", 200)
            QStash(os.environ["QSTASH_TOKEN"], base_url=os.environ["QSTASH_URL"]).message.publish(
                url="https://app.example.com/hook", body="x"
            )
            qstash.run_until_idle()
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["c.json: written (1 entry)"])
    assert (
        b'"destination": "https://app.example.com/hook"' in (pytester.path / "c.json").read_bytes()
    )
