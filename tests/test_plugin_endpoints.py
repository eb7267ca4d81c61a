"""Scripted destinations: sequences, non-retryable errors, Retry-After, hangs, callbacks."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_scripted_answers_drive_retry_dlq_and_callbacks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from urllib.parse import urlsplit

        import pytest
        from qstash_emulator.pytest import reply

        def test_sequence_then_default(qstash):
            hook = qstash.endpoint("/jobs").respond(500, 500, 200)
            assert hook.url.endswith(".endpoint.test/jobs")
            qstash.client().message.publish_json(url=hook.url, body={})
            qstash.run_until_idle()
            assert [d.status for d in hook.deliveries] == [500, 500, 200]
            assert hook.unused == []
            qstash.client().message.publish_json(url=hook.url, body={})
            assert qstash.wait_for(url=hook.url, count=4)[-1].response.body == b"ok"

        def test_non_retryable(qstash):
            hook = qstash.endpoint("/nr").respond(
                reply(489, "bad input", headers={"Upstash-NonRetryable-Error": "true"})
            )
            qstash.client().message.publish_json(url=hook.url, body={}, retries=5)
            qstash.run_until_idle()
            [only] = hook.deliveries
            assert only.outcome == "failed"
            assert only.reason == "status 489 with Upstash-NonRetryable-Error: true"
            assert qstash.assert_dead_lettered(url=hook.url)["responseBody"] == "bad input"

        def test_retry_after(qstash):
            start = qstash.now_ms
            hook = qstash.endpoint("/ra").respond(reply(429, headers={"Retry-After": "7"}))
            qstash.client().message.publish_json(url=hook.url, body={})
            qstash.run_until_idle()
            first, second = hook.deliveries
            assert first.next_delay_ms == 7000
            assert first.delay_source == "retry-after: 7"
            assert second.started_at - start == 7000

        def test_hang_and_refuse(qstash):
            hook = qstash.endpoint("/flaky").respond("hang", "refuse", 200)
            qstash.client().message.publish_json(
                url=hook.url, body={}, timeout="5s", retry_delay="1000"
            )
            qstash.run_until_idle()
            hung, refused, ok = hook.deliveries
            assert (hung.status, hung.error, hung.outcome) == (None, "timeout after 5s", "retry")
            assert hook.url.startswith("http://")  # port 80, then
            assert refused.error == f"connection refused by {urlsplit(hook.url).hostname}:80"
            assert ok.status == 200

        def test_handler_sees_the_request(qstash):
            def by_body(request):
                return 200 if b"good" in request.body else reply(400, "no")

            hook = qstash.endpoint("/h").always(by_body)
            client = qstash.client()
            client.message.publish(url=hook.url, body="good", retries=0)
            client.message.publish(url=hook.url, body="evil", retries=0)
            qstash.run_until_idle()
            assert sorted(d.status for d in hook.deliveries) == [200, 400]
            qstash.dead_letters()

        def test_callbacks(qstash):
            job = qstash.endpoint("/job").always(500)
            done = qstash.endpoint("/done")
            failed = qstash.endpoint("/failed")
            qstash.client().message.publish_json(
                url=job.url, body={}, retries=0, callback=done.url, failure_callback=failed.url
            )
            qstash.run_until_idle()
            assert done.last.kind == "callback"
            assert failed.last.kind == "failure_callback"
            assert failed.last.json()["status"] == 500
            qstash.assert_dead_lettered(url=job.url)

        def test_bad_step(qstash):
            with pytest.raises(TypeError, match="invalid scripted response 'explode'"):
                qstash.endpoint("/x", "explode")
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=7)


def test_full_url_scripts_then_passes_through(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        async def handle(request):
            return PlainTextResponse("from the app", status_code=201)

        app = Starlette(routes=[Route("/jobs", handle, methods=["POST"])])

        def test_outage_then_app(qstash):
            qstash.mount("https://api.example.com", app)
            qstash.endpoint("https://api.example.com/jobs").respond(503)
            qstash.client().message.publish_json(url="https://api.example.com/jobs", body={})
            qstash.run_until_idle()
            outage, served = qstash.deliveries
            assert outage.status == 503
            assert (served.status, served.response.text) == (201, "from the app")
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_scripted_functions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest
        from qstash_emulator.pytest import reply

        def test_an_async_function_is_awaited(qstash):
            async def later(request):
                await asyncio.sleep(0)
                return reply(201, json={"got": request.json()["n"]})

            hook = qstash.endpoint("/async", later)
            qstash.client().message.publish_json(url=hook.url, body={"n": 5})
            delivery = qstash.wait_for(url=hook.url)
            assert (delivery.status, delivery.response.body) == (201, b'{"got":5}')

        def test_the_request_reads_like_a_delivery(qstash):
            seen = []

            def look(request):
                seen.append((request.json(), request.header("x-trace"), request.text))
                return 204

            hook = qstash.endpoint("/look", look)
            qstash.client().message.publish_json(
                url=hook.url, body={"a": 1}, headers={"X-Trace": "t"}
            )
            qstash.wait_for(url=hook.url)
            assert seen == [({"a": 1}, "t", '{"a": 1}')]

        def test_an_exception_is_named_in_the_assertion(qstash):
            def broken(request):
                raise ValueError("no such order")

            hook = qstash.endpoint("/broken", broken)
            qstash.client().message.publish_json(url=hook.url, body={}, retries=0)
            qstash.run_until_idle()
            try:
                qstash.assert_delivered(url=hook.url)
            finally:
                qstash.dead_letters()

        def test_an_exception_is_named_at_teardown(qstash):
            def broken(request):
                raise KeyError("sku")

            hook = qstash.endpoint("/again").always(broken)
            qstash.client().message.publish_json(url=hook.url, body={}, retries=1)
            qstash.wait_for(url=hook.url)
        """
    )
    result = pytester.runpytest("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_an_exception_is_named_in_the_assertion*",
            "E *no delivery matched: outcome='delivered', url=*",
            "E *  msg_* attempt 1: POST */broken -> 500 failed "
            "'handler broken raised ValueError: no such order'",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_an_exception_is_named_at_teardown*",
            "  msg_* POST */again: retrying (retried 1 of 1), next attempt in 12.182s (at *); "
            "last attempt: status 500 \"handler broken raised KeyError: 'sku'\"",
        ]
    )


def test_a_failed_status_assertion_shows_the_body(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from qstash_emulator.pytest import reply

        def test_status(qstash):
            hook = qstash.endpoint("/s").respond(reply(200, "queued for later"))
            qstash.client().message.publish_json(url=hook.url, body={})
            qstash.wait_for(url=hook.url, status=201)
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["E *      status: expected 201, got status 200 'queued for later'"]
    )
