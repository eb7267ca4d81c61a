"""The options table is complete: every option a publish can set has its row, every row names
fields that exist, and a message keeps every option it holds as it was given (what its views
render it from)."""

from __future__ import annotations

import dataclasses

import pytest

from qstash_emulator.model.headers import H, documented, parse_publish
from qstash_emulator.model.message import Message
from qstash_emulator.model.options import OPTIONS, Option, PublishOptions, option_fields, options_of
from qstash_emulator.server.config import Settings
from qstash_emulator.workflows._model import Run

_PUBLISH_HEADERS = documented(schedule=False)
_SETTINGS = Settings()
_MESSAGE_FIELDS = {f.name for f in dataclasses.fields(Message)}
# Documented headers that configure another header's option rather than one of their own.
_PARTS = {
    H.CONTENT_TYPE: H.FORWARD,  # forwarded with the Upstash-Forward-* headers
    H.HEADER_FORWARD: H.FORWARD,
    H.FLOW_VALUE: H.FLOW_KEY,
    H.RUN_INIT: H.RUN_ID,
    H.RUN_URL: H.RUN_ID,
    H.CALL_TYPE: H.RUN_ID,
    H.INVOKE: H.RUN_ID,
    H.FEATURE_SET: H.RUN_ID,
    H.TRIGGER_BY_SDK: H.RUN_ID,
}
# Values that set every option a message holds to something other than its default.
_GIVEN = [
    ("Upstash-Method", "PUT"),
    ("Upstash-Forward-X-Secret", "s"),
    ("Upstash-Retries", "2"),
    ("Upstash-Retry-Delay", "1000 * retried"),
    ("Upstash-Timeout", "30s"),
    ("Upstash-Label", "a,b"),
    ("Upstash-Redact-Fields", "body"),
    ("Upstash-Flow-Control-Key", "k"),
    ("Upstash-Flow-Control-Value", "parallelism=2, rate=5, period=1m"),
    ("Upstash-Callback", "http://127.0.0.1:9/cb"),
    ("Upstash-Callback-Forward-X-A", "1"),
    ("Upstash-Failure-Callback", "http://127.0.0.1:9/f"),
    ("Upstash-Workflow-RunId", "wfr_1"),
]


def test_every_publish_option_has_one_row() -> None:
    names = [option.name for option in OPTIONS]
    assert sorted(names) == sorted(f.name for f in dataclasses.fields(PublishOptions))


def test_every_documented_publish_header_sets_an_option() -> None:
    rows = {option.header for option in OPTIONS}
    missing = [h for h in _PUBLISH_HEADERS if _PARTS.get(h, h) not in rows]
    assert missing == []


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.name)
def test_every_row_names_message_fields_that_exist(option: Option) -> None:
    assert set(option.fields) <= _MESSAGE_FIELDS


@pytest.mark.parametrize(
    "option",
    [o for o in OPTIONS if o.join or len(o.fields) == 1],
    ids=lambda option: option.name,
)
def test_a_message_keeps_each_option_as_given(option: Option) -> None:
    """What the views render a message from is what the publish set."""
    opts = parse_publish(_GIVEN, _SETTINGS)
    name = option.name
    assert getattr(opts, name) != getattr(PublishOptions(), name), "give it in _GIVEN"
    msg = Message(
        id="msg_1",
        user="u",
        url="http://127.0.0.1:9/job",
        created_at=0,
        not_before=0,
        **option_fields(opts, _SETTINGS.default_retries),
    )
    assert getattr(options_of(msg), name) == getattr(opts, name)


def test_every_option_a_run_keeps_is_a_run_field() -> None:
    kept = {option.name for option in OPTIONS if option.run}
    assert kept <= {f.name for f in dataclasses.fields(Run)}


def test_every_option_header_is_documented() -> None:
    """A row's header is in the OpenAPI document's publish or schedule headers."""
    known = {*_PUBLISH_HEADERS, *documented(schedule=True), H.FORWARD}
    assert [o.header for o in OPTIONS if o.header not in known] == []


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.run], ids=lambda option: option.name)
def test_a_runs_later_messages_take_every_setting_it_keeps(option: Option) -> None:
    """A run started with the option gives it to a message that sets none of its own, as the
    message fields and as the run's own view."""
    run = Run(
        user="u",
        run_id="wfr_1",
        url="http://127.0.0.1:9/wf",
        created_at=0,
        init_message_id="msg_0",
        **Run.settings_of(parse_publish(_GIVEN, _SETTINGS)),
    )
    inherited = run.applied(PublishOptions())
    assert getattr(inherited, option.name) == getattr(parse_publish(_GIVEN, _SETTINGS), option.name)
    fields = run.message_fields(_SETTINGS.default_retries)
    wanted = option.message_fields(getattr(inherited, option.name))
    if option.name == "retries":
        wanted = {"max_retries": 2}
    assert {k: fields[k] for k in wanted} == wanted
