from __future__ import annotations

import pytest

from qstash_emulator import Settings
from qstash_emulator._errors import BadRequest
from qstash_emulator.model.header_values import parse_flow_value
from qstash_emulator.model.headers import parse_publish
from qstash_emulator.model.sendable import canonical


def test_canonical_names() -> None:
    assert canonical("test-header") == "Test-Header"
    assert canonical("X-API-KEY") == "X-Api-Key"
    assert canonical("bypass-tunnel-reminder") == "Bypass-Tunnel-Reminder"


def test_forwarding_rules() -> None:
    opts = parse_publish(
        [
            ("upstash-forward-test-header", "v"),
            ("Upstash-Forward-Upstash-Workflow-Sdk-Version", "1"),
            ("content-type", "text/plain"),
            ("x-not-forwarded", "n"),
            ("authorization", "Bearer t"),
            ("Upstash-Callback-Forward-X-Cb", "c"),
            ("upstash-callback", "https://cb.example"),
        ],
        Settings(),
    )
    assert opts.header == {
        "Test-Header": ["v"],
        "Upstash-Workflow-Sdk-Version": ["1"],
        "Content-Type": ["text/plain"],
    }
    assert opts.callback is not None and opts.callback["header"] == {"X-Cb": ["c"]}


def test_python_sdk_boolean_spelling_is_accepted() -> None:
    assert parse_publish(
        [("Upstash-Content-Based-Deduplication", "True")], Settings()
    ).content_dedup


def test_conflicting_duplicate_config_header_is_400() -> None:
    with pytest.raises(BadRequest, match="Upstash-Retries: header given 2 times"):
        parse_publish([("upstash-retries", "1"), ("Upstash-Retries", "2")], Settings())
    assert (
        parse_publish([("upstash-retries", "1"), ("Upstash-Retries", "1")], Settings()).retries == 1
    )


def test_flow_control_value() -> None:
    assert parse_flow_value("parallelism=3, rate=10, period=1h30m3s") == {
        "parallelism": 3,
        "rate": 10,
        "period": 5403,
    }
    with pytest.raises(BadRequest, match="period"):
        parse_flow_value("rate=1, period=8d")


def test_redact_spellings() -> None:
    opts = parse_publish(
        [("Upstash-Redact-Fields", "body, headers, header[x-a], headers[X-B]")], Settings()
    )
    assert opts.redact == ["body", "header", "header[X-A]", "header[X-B]"]


def test_delay_beyond_plan_is_400() -> None:
    with pytest.raises(BadRequest, match="Upstash-Delay"):
        parse_publish([("Upstash-Delay", "8d")], Settings(quota="free"))
    assert parse_publish([("Upstash-Delay", "8d")], Settings()).delay_ms == 8 * 86_400_000


def test_one_content_type_and_no_framing_headers() -> None:
    opts = parse_publish(
        [
            ("content-type", "application/json"),
            ("upstash-forward-content-type", "text/plain"),
            ("upstash-forward-content-length", "3"),
            ("upstash-forward-host", "x"),
            ("upstash-forward-proxy-authorization", "p"),
            ("upstash-forward-x-a", "a"),
        ],
        Settings(),
    )
    assert opts.header == {"Content-Type": ["text/plain"], "X-A": ["a"]}
    own = parse_publish([("content-type", "application/json")], Settings())
    assert own.header == {"Content-Type": ["application/json"]}


def test_workflow_headers_tie_a_message_to_its_run() -> None:
    opts = parse_publish(
        [
            ("Upstash-Workflow-RunId", "wfr_1"),
            ("Upstash-Workflow-Init", "true"),
            ("Upstash-Workflow-Url", "http://127.0.0.1:3000/wf"),
            ("Upstash-Feature-Set", "LazyFetch, InitialBody,WF_DetectTrigger"),
        ],
        Settings(),
    )
    assert opts.workflow == {
        "run_id": "wfr_1",
        "init": True,
        "url": "http://127.0.0.1:3000/wf",
        "call_type": "step",
        "invoke": False,
        "features": ["LazyFetch", "InitialBody", "WF_DetectTrigger"],
        "by_sdk": False,
    }
    assert parse_publish([("x-other", "1")], Settings()).workflow is None


def test_callback_and_failure_callback_prefixes_configure_their_own_messages() -> None:
    """``Upstash-Callback-X`` is ``Upstash-X`` of the callback, ``Upstash-Failure-Callback-X``
    of the failure callback, and so on down (a callback's own failure callback)."""
    opts = parse_publish(
        [
            ("Upstash-Callback", "http://127.0.0.1:3000/wf"),
            ("Upstash-Callback-Workflow-RunId", "wfr_1"),
            ("Upstash-Callback-Workflow-CallType", "fromCallback"),
            ("Upstash-Callback-Workflow-Init", "false"),
            ("Upstash-Callback-Feature-Set", "LazyFetch"),
            ("Upstash-Callback-Forward-Upstash-Workflow-StepId", "3"),
            ("Upstash-Callback-Failure-Callback", "http://127.0.0.1:3000/failed"),
            ("Upstash-Callback-Failure-Callback-Workflow-Runid", "wfr_1"),
            ("Upstash-Callback-Failure-Callback-Workflow-Calltype", "failureCall"),
            ("Upstash-Failure-Callback", "http://127.0.0.1:3000/wf"),
            ("Upstash-Failure-Callback-Flow-Control-Key", "k"),
            ("Upstash-Failure-Callback-Flow-Control-Value", "parallelism=2"),
        ],
        Settings(),
    )
    callback = opts.callback
    assert callback is not None
    assert callback["header"] == {"Upstash-Workflow-Stepid": ["3"]}
    assert callback.get("workflow") == {
        "run_id": "wfr_1",
        "init": False,
        "url": None,
        "call_type": "fromCallback",
        "invoke": False,
        "features": ["LazyFetch"],
        "by_sdk": False,
    }
    nested = callback.get("failure_callback")
    assert nested is not None and nested["url"] == "http://127.0.0.1:3000/failed"
    assert nested.get("workflow", {}).get("call_type") == "failureCall"
    failure = opts.failure_callback
    assert failure is not None and failure.get("flow") == {
        "key": "k",
        "parallelism": 2,
        "rate": None,
        "period": 1,
    }
    assert "workflow" not in failure
    assert opts.workflow is None


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([("Upstash-Workflow-RunId", "")], "Upstash-Workflow-RunId"),
        ([("Upstash-Workflow-Init", "true")], "Upstash-Workflow-RunId"),
        ([("Upstash-Workflow-RunId", "r"), ("Upstash-Workflow-Invoke", "x")], "Invoke"),
        (
            [
                ("Upstash-Failure-Callback-Workflow-RunId", "r"),
                ("Upstash-Failure-Callback-Workflow-CallType", "x"),
            ],
            "Upstash-Failure-Callback-Workflow-CallType",
        ),
    ],
)
def test_bad_workflow_headers_name_the_header(items: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(BadRequest, match=field):
        parse_publish(items, Settings())


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ([("Upstash-Forward-X-A", "a\r\nb")], "invalid Upstash-Forward-X-A: the value of 'x-a'"),
        ([("Upstash-Forward-X\r\nA", "a")], "invalid 'upstash-forward-x\\r\\na': 'x\\r\\na' is"),
        ([("Upstash-Forward-X A", "a")], "invalid 'upstash-forward-x a': 'x a' is not"),
        ([("Upstash-Forward-X-A", "a\x00")], "invalid Upstash-Forward-X-A: the value of 'x-a' has"),
        ([("Content-Type", "text/plain\n")], "invalid Content-Type: the value of 'content-type'"),
        (
            [("Upstash-Header-Forward", "true"), ("X-B", "1\n2")],
            "invalid X-B: the value of 'x-b'",
        ),
        (
            [("Upstash-Callback", "http://cb.example"), ("Upstash-Callback-Forward-X-C", "\r")],
            "invalid Upstash-Callback-Forward-X-C: the value of 'x-c'",
        ),
        (
            [("Upstash-Failure-Callback-Forward-X-D\n", "1")],
            "invalid 'upstash-failure-callback-forward-x-d\\n': 'x-d\\n' is not",
        ),
    ],
)
def test_headers_that_cannot_be_sent_are_refused(items: list[tuple[str, str]], error: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_publish(items, Settings())
    assert info.value.message.startswith(error)


def test_sendable_headers_keep_tabs_and_non_ascii() -> None:
    opts = parse_publish([("Upstash-Forward-X-A", "a\tb é")], Settings())
    assert opts.header == {"X-A": ["a\tb é"]}
