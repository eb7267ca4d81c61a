"""The ``qstash`` fixture: zero configuration, isolation per test, options from every source."""

from __future__ import annotations

import os
import re

import pytest

pytest_plugins = ["pytester"]


def test_fixture_sets_the_environment_the_sdks_read(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        from qstash import QStash, Receiver

        def test_env(qstash):
            assert os.environ["QSTASH_URL"] == qstash.url
            assert os.environ["QSTASH_TOKEN"] == qstash.token
            assert os.environ["QSTASH_CURRENT_SIGNING_KEY"] == qstash.current_signing_key
            assert os.environ["QSTASH_NEXT_SIGNING_KEY"] == qstash.next_signing_key
            assert qstash.url.startswith("http://127.0.0.1:")
            # Unmodified application code: the SDK reads QSTASH_URL by itself.
            client = QStash(os.environ["QSTASH_TOKEN"])
            hook = qstash.endpoint("/hook")
            res = client.message.publish_json(url=hook.url, body={"n": 1})
            client.http._client.close()
            delivery = qstash.wait_for(url=hook.url)
            assert delivery.message_id == res.message_id
            assert delivery.json() == {"n": 1}
            Receiver(
                os.environ["QSTASH_CURRENT_SIGNING_KEY"], os.environ["QSTASH_NEXT_SIGNING_KEY"]
            ).verify(
                signature=delivery.header("upstash-signature"),
                body=delivery.text,
                url=hook.url,
            )

        def test_env_is_restored_after_the_test():
            assert "QSTASH_TOKEN" not in os.environ
        """
    )
    result = pytester.runpytest("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_each_test_is_its_own_user(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        seen = {}

        def test_one(qstash):
            seen["one"] = (qstash.token, qstash.current_signing_key)
            client = qstash.client()
            client.queue.upsert("shared-name", parallelism=1)
            client.message.publish_json(url="https://example.com/a", body={}, delay=3600)
            assert len(qstash.messages()) == 1
            client.message.cancel_all()

        def test_two(qstash):
            assert (qstash.token, qstash.current_signing_key) != seen["one"]
            client = qstash.client()
            assert client.queue.list() == []  # the first test's queue is not visible
            assert qstash.messages() == []
            assert qstash.deliveries == []
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=2)


def test_marker_injects_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.qstash
        def test_marked():
            assert os.environ["QSTASH_URL"].startswith("http://127.0.0.1:")

        def test_unmarked():
            assert "QSTASH_URL" not in os.environ
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=2)


def test_options_from_every_source(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def qstash_config():
            return {"timeout": 7}
        """
    )
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.qstash(auto_advance=False)

        def test_config_and_module_marker(qstash):
            assert qstash.options.timeout == 7
            assert qstash.options.auto_advance is False
            assert qstash.options.clock == "virtual"

        @pytest.mark.qstash(clock="real", auto_advance=True)
        def test_closest_marker_wins(qstash):
            assert qstash.options.clock == "real"
            assert qstash.options.auto_advance is True
            assert qstash.emulator.clock.virtual is False

        @pytest.mark.parametrize("qstash", [{"checks": False}], indirect=True)
        def test_indirect_parameter(qstash):
            assert qstash.options.checks is False
            assert qstash.options.timeout == 7
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=3)


def test_command_line_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_options(qstash):
            assert qstash.options.clock == "real"
            assert qstash.options.checks is False
            assert qstash.options.seed == 42
        """
    )
    result = pytester.runpytest(
        "-q", "--qstash-real-time", "--qstash-no-checks", "--qstash-seed=42"
    )
    result.assert_outcomes(passed=1)


def test_options_are_documented_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "qstash-emulator (the qstash fixture):",
            "*--qstash-real-time*wall clock*",
            "*--qstash-redis-url=URL*",
            "*--qstash-seed=SEED*",
            "*--qstash-no-checks*",
        ]
    )
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.qstash(clock='virtual'|'real', *"])


def test_bad_options_name_the_field(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.qstash(colour="blue")
        def test_unknown(qstash):
            pass

        @pytest.mark.qstash(clock="sundial")
        def test_bad_clock(qstash):
            pass

        @pytest.mark.qstash(checks=("pending", "typos"))
        def test_bad_check(qstash):
            pass
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.qstash: unknown qstash option colour; expected any of *",
            "*@pytest.mark.qstash: invalid clock 'sundial': expected 'virtual' or 'real'",
            "*invalid checks typos: expected True, False or any of pending, dead_letters, *",
        ]
    )


def test_seed_makes_ids_tokens_and_keys_repeatable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import json, os

        def test_snapshot(qstash):
            hook = qstash.endpoint("/s")
            res = qstash.client().message.publish_json(url=hook.url, body={})
            qstash.wait_for(url=hook.url)
            snapshot = [qstash.token, qstash.current_signing_key, res.message_id]
            with open(os.environ["SNAPSHOT"], "a") as out:
                out.write(json.dumps(snapshot) + "\\n")
        """
    )
    snapshot = pytester.path / "snap.txt"
    monkeypatch.setenv("SNAPSHOT", str(snapshot))
    for seed in ("7", "7", "8"):
        pytester.runpytest("-q", f"--qstash-seed={seed}").assert_outcomes(passed=1)
    first, again, other = snapshot.read_text().splitlines()
    assert first == again
    assert first != other
    # Without a seed, ids come from the OS again.
    pytester.runpytest("-q").assert_outcomes(passed=1)
    assert snapshot.read_text().splitlines()[-1] != first


def test_xdist_workers_each_get_a_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_parallel(qstash, n):
            hook = qstash.endpoint("/p").respond(503, 200)
            qstash.client().message.publish_json(url=hook.url, body={"n": n})
            delivery = qstash.wait_for(url=hook.url, status=200)
            assert delivery.json() == {"n": n}
            assert len(qstash.deliveries) == 2
            assert os.environ["PYTEST_XDIST_WORKER"] in ("gw0", "gw1")
        """
    )
    # Only the plugins this needs: the workers start faster without unrelated ones.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess(
        "-q", "-n", "2", "-p", "xdist", "-p", "conftest_plugin.plugin", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=6)


@pytest.mark.redis
def test_real_redis_keeps_workers_apart_and_is_left_clean(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_on_redis(qstash, n):
            assert qstash.emulator.settings.redis_url is not None
            hook = qstash.endpoint("/r").respond(500, 200)
            qstash.client().message.publish_json(url=hook.url, body={"n": n}, delay=60)
            assert qstash.wait_for(url=hook.url, status=200).json() == {"n": n}
        """
    )
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess(
        "-q",
        "-n",
        "2",
        "-p",
        "xdist",
        "-p",
        "conftest_plugin.plugin",
        f"--qstash-redis-url={redis_url}",
    )
    result.assert_outcomes(passed=4)
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        assert client.keys("qe:pytest:*") == []  # each worker removed its own prefix
    finally:
        client.close()


def test_the_pytest_extra_brings_what_a_test_suite_needs() -> None:
    import tomllib
    from pathlib import Path

    root = Path(__file__).parent.parent
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = sorted(re.split(r"[<>=;\[ ]", req, maxsplit=1)[0] for req in extras["pytest"])
    assert names == ["pytest", "qstash"]  # not the project's own dev tools
    section = (root / "README.md").read_text().split("## Testing your app\n", 1)[1]
    # Not on PyPI yet: the section starts with a command that works, the extra from git.
    assert section.lstrip().startswith("```sh\npip install 'qstash-emulator[pytest] @ git+https://")


def test_the_sdk_client_is_built_once_and_acts_for_each_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx

        kept = []

        def test_first(qstash):
            client = qstash.client()
            kept.append((client, qstash.url))
            hook = qstash.endpoint("/a")
            client.message.publish_json(url=hook.url, body={})
            qstash.wait_for(url=hook.url)
            assert qstash.client() is client  # no new TLS context (~25 ms) per call

        def test_second(qstash):
            client = qstash.client()
            assert client is kept[0][0]  # nor per test,
            assert qstash.messages() == [] and client.dlq.list().messages == []
            hook = qstash.endpoint("/b")  # yet it acts for this test's user
            res = client.message.publish_json(url=hook.url, body={})
            assert qstash.wait_for(url=hook.url).message_id == res.message_id
            assert qstash.client(retry=False) is not client

        def test_a_closed_client_is_built_again(qstash):
            kept[0][0].http._client.close()
            assert not qstash.client().http._client.is_closed

        def test_its_token_acts_for_nobody_between_tests():
            client, url = kept[0]
            answer = httpx.get(url + "/v2/queues", headers={"Authorization": client.http._token})
            assert answer.status_code == 401
            assert answer.json() == {
                "error": "Unauthorized: this is the pytest session's token, which stands for "
                "the running test, and no test using the qstash fixture is running on this "
                "emulator"
            }
        """
    )
    pytester.runpytest("-q", "-p", "no:randomly").assert_outcomes(passed=4)


IMPORT_TIME_APP = """
import os
from qstash import QStash, Receiver

# Built when imported, before any fixture runs, as django-qstash builds its client.
CLIENT = QStash(os.environ["QSTASH_TOKEN"], base_url=os.environ.get("QSTASH_URL"))
RECEIVER = Receiver(
    os.environ["QSTASH_CURRENT_SIGNING_KEY"], os.environ["QSTASH_NEXT_SIGNING_KEY"]
)
"""


def test_session_env_serves_apps_that_build_their_client_at_import(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nqstash_env = session\n")
    pytester.makepyfile(shop=IMPORT_TIME_APP)
    pytester.makeconftest(
        "import shop  # the app, imported before collection\n\n\n"
        "def pytest_unconfigure():\n"
        "    shop.CLIENT.http._client.close()  # this run shares the outer process\n"
    )
    pytester.makepyfile(
        test_shop="""
        import os
        import pytest
        from shop import CLIENT, RECEIVER

        def test_publish_and_verify(qstash):
            hook = qstash.endpoint("/hook")
            res = CLIENT.message.publish_json(url=hook.url, body={"n": 1})
            delivery = qstash.wait_for(url=hook.url)
            assert delivery.message_id == res.message_id
            RECEIVER.verify(
                signature=delivery.header("Upstash-Signature"), body=delivery.text, url=hook.url
            )
            assert delivery.signature.ok
            CLIENT.queue.upsert("mine", parallelism=1)
            assert os.environ["QSTASH_TOKEN"] == qstash.token

        def test_each_test_is_still_its_own_user(qstash):
            assert CLIENT.queue.list() == []
            assert qstash.deliveries == []

        def test_between_tests_the_token_stands_for_nobody():
            with pytest.raises(Exception, match="no test using the qstash fixture is running"):
                CLIENT.queue.list()
        """
    )
    # Exported for the developer's own dev server or production: the run overrides them.
    monkeypatch.setenv("QSTASH_URL", "https://qstash.upstash.io")
    monkeypatch.setenv("QSTASH_TOKEN", "a-real-token")
    monkeypatch.setenv("QSTASH_CURRENT_SIGNING_KEY", "sig_real")
    monkeypatch.setenv("QSTASH_NEXT_SIGNING_KEY", "sig_real_next")
    result = pytester.runpytest("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    assert os.environ["QSTASH_URL"] == "https://qstash.upstash.io"  # restored after the run
    assert os.environ["QSTASH_TOKEN"] == "a-real-token"


def test_session_env_under_xdist(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nqstash_env = session\n")
    pytester.makepyfile(shop=IMPORT_TIME_APP)
    pytester.makepyfile(
        test_shop="""
        import pytest
        from shop import CLIENT

        @pytest.mark.parametrize("n", range(4))
        def test_publish(qstash, n):
            hook = qstash.endpoint("/hook")
            CLIENT.message.publish_json(url=hook.url, body={"n": n})
            assert qstash.wait_for(url=hook.url).json() == {"n": n}
        """
    )
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess(
        "-q", "-n", "2", "-p", "xdist", "-p", "conftest_plugin.plugin", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4)


def test_a_bad_qstash_env_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nqstash_env = always\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid qstash_env 'always': expected 'test' or 'session'"])


def test_an_async_client_leaves_no_connection_behind(pytester: pytest.Pytester) -> None:
    """The async client's connections belong to the test's event loop, gone by teardown:
    it keeps none open between requests, so none is collected unclosed in a later test."""
    pytester.makepyfile(
        """
        import asyncio
        import gc

        def test_publish_with_the_async_client(qstash):
            hook = qstash.endpoint("/async")

            async def publish():
                client = qstash.async_client()
                await client.message.publish_json(url=hook.url, body={})
                await client.queue.list()

            asyncio.run(publish())
            qstash.wait_for(url=hook.url)

        def test_later(qstash):
            gc.collect()
        """
    )
    result = pytester.runpytest("-q", "-p", "no:randomly", "-W", "error")
    result.assert_outcomes(passed=2)


def test_a_client_the_code_under_test_never_closes_leaves_no_socket(
    pytester: pytest.Pytester,
) -> None:
    """The README's pattern: the app builds its own SDK clients (qstash 3.x has no close()).
    The fixture's emulators close each connection after answering, so no idle socket is
    collected unclosed in a later test, with or without the fixture, sync or async."""
    pytester.makepyfile(
        """
        import asyncio
        import gc
        import os

        from qstash import AsyncQStash, QStash

        def test_publish_with_the_apps_own_clients(qstash):
            hook = qstash.endpoint("/own")
            client = QStash(os.environ["QSTASH_TOKEN"])
            client.message.publish_json(url=hook.url, body={})
            client.queue.list()

            async def publish():
                await AsyncQStash(os.environ["QSTASH_TOKEN"]).message.publish(url=hook.url)

            asyncio.run(publish())
            qstash.wait_for(url=hook.url, count=2)

        def test_later_without_the_fixture():
            gc.collect()
        """
    )
    result = pytester.runpytest("-q", "-p", "no:randomly", "-W", "error")
    result.assert_outcomes(passed=2)
