"""Delivery records, signature checks and assertions whose failures show the near misses."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_records_carry_request_response_and_decision(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_records(qstash):
            start = qstash.now_ms
            hook = qstash.endpoint("/r").respond(503, 200)
            client = qstash.client()
            res = client.message.publish_json(
                url=hook.url, body={"a": 1}, headers={"X-Trace": "t1"}, retries=2
            )
            qstash.run_until_idle()
            first, second = qstash.deliveries
            assert (first.number, first.retried, second.number) == (1, 0, 2)
            assert first.message_id == second.message_id == res.message_id
            assert first.kind == "message"
            assert first.method == "POST" and first.path == "/r" and first.url == hook.url
            assert first.destination_url == hook.url
            assert first.header("x-trace") == "t1" and first.headers["X-Trace"] == "t1"
            assert first.header("Upstash-Retried") == "0"
            assert first.json() == {"a": 1} and first.text == '{"a": 1}'
            assert first.status == 503 and first.error is None
            assert first.outcome == "retry" and not first.delivered
            assert first.reason == "status 503"
            assert first.max_retries == 2 and first.retries_left == 2
            assert first.next_delay_ms == 12182
            assert first.delay_source == "default backoff min(86400, e^(2.5*1))s"
            assert first.started_at == start
            assert first.next_attempt_at == start + 12182
            assert second.started_at == start + 12182
            assert second.outcome == "delivered" and second.delivered
            assert second.next_delay_ms is None and second.next_attempt_at is None
            assert first.wall_started <= first.wall_finished <= second.wall_started
            assert first.signature.ok
            transcript = first.explain()
            assert "decision: retry because status 503" in transcript
            assert "next attempt after 12182 ms (default backoff" in transcript
            assert "2 retries left" in transcript
            assert transcript.endswith("signature: valid")

        def test_list_helpers(qstash):
            hook = qstash.endpoint("/h")
            assert not qstash.deliveries.called and qstash.deliveries.call_count == 0
            client = qstash.client()
            ids = [client.message.publish_json(url=hook.url, body={"n": n}).message_id
                   for n in range(3)]
            qstash.run_until_idle()
            assert qstash.deliveries.called and qstash.deliveries.call_count == 3
            assert hook.called and hook.call_count == 3
            assert sorted(d.json()["n"] for d in hook.deliveries) == [0, 1, 2]
            assert qstash.deliveries.filter(json={"n": 1}).last.json() == {"n": 1}
            assert len(qstash.deliveries.of(ids[0])) == 1
            assert set(qstash.deliveries.by_message()) == set(ids)
            assert isinstance(qstash.deliveries[:2], type(qstash.deliveries))
            assert "attempt 1: POST" in repr(qstash.deliveries.last)
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=2)


def test_signature_check_names_the_failing_claim(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        async def ok(request):
            return PlainTextResponse("ok")

        app = Starlette(routes=[Route("/jobs", ok, methods=["POST"])])

        def test_a_rewritten_delivery_is_signed_for_the_public_url(qstash):
            qstash.mount("http://internal.test", app)
            qstash.rewrite("https://api.example.com", "http://internal.test")
            qstash.client().message.publish_json(url="https://api.example.com/jobs", body={})
            delivery = qstash.wait_for(path="/jobs")
            assert delivery.url == "https://api.example.com/jobs"
            assert delivery.destination_url == "http://internal.test/jobs"
            assert delivery.status == 200
            # The app's receiver checks its public URL, the one that was published...
            assert delivery.signature.ok
            assert "signature: valid" in delivery.explain()
            # ...and one checking the address it was called on would reject it, saying why.
            local = delivery.check_signature(url=delivery.destination_url)
            assert (local.ok, local.failed_claim) == (False, "sub")
            assert local.reason == (
                "sub is 'https://api.example.com/jobs', want 'http://internal.test/jobs'"
            )

        def test_rotated_keys_fail_on_the_key(qstash):
            hook = qstash.endpoint("/k")
            client = qstash.client()
            client.signing_key.rotate()
            client.signing_key.rotate()
            client.message.publish_json(url=hook.url, body={})
            delivery = qstash.wait_for(url=hook.url)
            check = delivery.signature
            assert (check.ok, check.failed_claim) == (False, "key")
            assert check.reason == "signed with neither the current nor the next key"
            current = client.signing_key.get()
            assert delivery.check_signature(keys=(current.current, current.next)).ok
            # The fixture follows the rotations; the environment keeps what was set.
            assert (qstash.current_signing_key, qstash.next_signing_key) == (
                current.current,
                current.next,
            )
            assert os.environ["QSTASH_CURRENT_SIGNING_KEY"] == qstash.env[
                "QSTASH_CURRENT_SIGNING_KEY"
            ] != current.current
            qstash.receiver().verify(
                signature=delivery.header("Upstash-Signature"), body=delivery.text, url=hook.url
            )
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=2)


def test_assertion_failures_show_near_misses_field_by_field(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def _publish(qstash, hook, body, headers=None):
            qstash.client().message.publish_json(url=hook.url, body=body, headers=headers or {})

        def test_json_differs(qstash):
            hook = qstash.endpoint("/jobs")
            _publish(qstash, hook, {"id": 1})
            _publish(qstash, hook, {"id": 3})
            qstash.run_until_idle()
            qstash.assert_delivered(path="/jobs", json={"id": 2})

        def test_header_differs(qstash):
            hook = qstash.endpoint("/jobs")
            _publish(qstash, hook, {}, {"X-Tenant": "a"})
            qstash.run_until_idle()
            qstash.assert_delivered(headers={"X-Tenant": "b", "X-Missing": "1"})

        def test_count_differs(qstash):
            hook = qstash.endpoint("/jobs")
            _publish(qstash, hook, {})
            qstash.run_until_idle()
            qstash.assert_delivered(url=hook.url, count=2)

        def test_nothing_was_sent(qstash):
            qstash.assert_delivered(path="/jobs")

        def test_not_delivered(qstash):
            hook = qstash.endpoint("/jobs")
            _publish(qstash, hook, {"id": 9})
            qstash.run_until_idle()
            qstash.assert_not_delivered(json={"id": 9})

        def test_unknown_criterion(qstash):
            with pytest.raises(TypeError, match="unknown delivery criteria: colour"):
                qstash.assert_delivered(colour="red")
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=5, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_json_differs*",
            "E *AssertionError: no delivery matched: outcome='delivered', path='/jobs', "
            "json={'id': 2}",
            "E *2 delivery attempt(s) were made; the closest:",
            "E *  msg_* attempt 1: POST http://*.endpoint.test/jobs -> 200 delivered",
            "E *      json: expected {'id': 2}, got {'id': *}",
            "E *  msg_* attempt 1: POST http://*.endpoint.test/jobs -> 200 delivered",
            "E *      json: expected {'id': 2}, got {'id': *}",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_header_differs*",
            "E *      header X-Tenant: expected 'b', got 'a'",
            "E *      header X-Missing: expected '1', got None",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_count_differs*",
            "E *AssertionError: expected 2 delivery(s) matching outcome='delivered', url=*, got 1:",
            "E *  msg_* attempt 1: POST http://*.endpoint.test/jobs -> 200 delivered",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_nothing_was_sent*",
            "E *No delivery was attempted in this test.",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_not_delivered*",
            "E *AssertionError: expected 0 attempts matching json={'id': 9}, got 1:",
        ]
    )
    # The plugin's own frames are hidden from the tracebacks.
    assert "_fixture.py" not in result.stdout.str()


def test_dead_letter_assertion(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from qstash_emulator.pytest import reply

        def test_dead(qstash):
            hook = qstash.endpoint("/d").always(reply(500, "broken"))
            res = qstash.client().message.publish_json(url=hook.url, body={}, retries=1)
            qstash.run_until_idle()
            entry = qstash.assert_dead_lettered(message_id=res.message_id)
            assert entry["responseStatus"] == 500
            assert entry["responseBody"] == "broken"
            assert qstash.deliveries.last.reason == "status 500; no retries left (1 of 1 used)"

        def test_not_dead(qstash):
            hook = qstash.endpoint("/fine")
            qstash.client().message.publish_json(url=hook.url, body={})
            qstash.run_until_idle()
            qstash.assert_dead_lettered(url=hook.url)
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *AssertionError: no dead-lettered message matched: outcome='failed', "
            "kind='message', url=*",
            "E *  msg_* attempt 1: POST * -> 200 delivered",
            "E *      outcome: expected 'failed', got 'delivered'",
        ]
    )


def test_return_shapes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from qstash_emulator.pytest import Deliveries, Delivery, PendingMessage

        def test_shapes(qstash):
            hook = qstash.endpoint("/n")
            client = qstash.client()
            for n in range(3):
                client.message.publish_json(url=hook.url, body={"n": n})
            got = qstash.wait_for(url=hook.url, count=3)
            assert isinstance(got, Deliveries)
            assert sorted(d.json()["n"] for d in got) == [0, 1, 2]
            assert isinstance(qstash.wait_for(url=hook.url), Delivery)
            res = client.message.publish_json(
                url=hook.url, body={"late": True}, delay=60, headers={"X-Tenant": "a"}
            )
            [pending] = qstash.messages()
            assert isinstance(pending, PendingMessage)
            assert (pending.message_id, pending.state, pending.due) == (
                res.message_id, "delayed", qstash.now_ms + 60_000
            )
            assert (pending.url, pending.method, pending.kind) == (hook.url, "POST", "message")
            assert (pending.retried, pending.max_retries) == (0, 3)
            assert pending.json() == {"late": True}
            assert pending.headers["X-Tenant"] == "a"
            assert pending.describe().startswith(f"{res.message_id} POST {hook.url}: delayed")
            assert qstash.messages("retrying") == []
            with pytest.raises(ValueError, match="invalid state 'late': expected one of pending"):
                qstash.messages("late")
            with pytest.raises(ValueError, match="invalid count 0"):
                qstash.wait_for(url=hook.url, count=0)
            qstash.run_until_idle()
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_a_body_dropped_by_the_budget_shows_as_dropped_in_the_record() -> None:
    """The record is the attempt the server keeps: when the body budget drops its body, the
    plugin's delivery says so instead of showing an empty body."""
    from conftest_plugin._deliveries import Delivery
    from qstash_emulator.services.inspection import History
    from qstash_emulator.testing import Attempt, AttemptRequest, AttemptResponse

    def attempt(n: int) -> Attempt:
        return Attempt(
            message_id=f"msg_{n}",
            user="u",
            kind="message",
            retried=0,
            max_retries=0,
            request=AttemptRequest("POST", "http://127.0.0.1:9/x", {}, b"q" * 3_000),
            response=AttemptResponse(200, {}, b"r" * 3_000),
            error=None,
            outcome="delivered",
            reason="status 200",
            next_delay_ms=None,
            delay_source=None,
            started_at=0,
            finished_at=0,
            wall_started=0.0,
            wall_finished=0.0,
        )

    history = History(body_budget=10_000)
    first, second = attempt(1), attempt(2)
    history.add(first)
    history.add(second)
    assert history.body_bytes == 6_000
    old, new = Delivery(first, first.url, ("k1", "k2")), Delivery(second, second.url, ("k", "k"))
    assert old.body_dropped and old.body == b"" and old.response is not None
    assert old.response.body_dropped and old.response.body == b""
    assert "request body: (dropped: over the body budget)" in old.explain()
    assert old.explain().endswith("signature: not checked (the body was dropped)")
    assert not new.body_dropped and new.body == b"q" * 3_000
