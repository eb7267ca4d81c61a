"""The options model is complete and followed: every PublishOptions field is set by a parse
rule, and every copy of a message's or a run's options (its stored record, a dead-letter
retry, a run's later messages, resume and restart, a schedule) keeps every option it holds, so
a new option field is carried everywhere without another edit (the views: tests/test_views.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from qstash_emulator.model.headers import RULES, H, documented, parse_publish
from qstash_emulator.model.message import Message
from qstash_emulator.model.options import KEPT, OPTIONS, Option, PublishOptions, named
from qstash_emulator.model.sendable import canonical
from qstash_emulator.server.config import Settings
from qstash_emulator.services.schedules import Schedule
from qstash_emulator.workflows._dlq import _continued, _from_step
from qstash_emulator.workflows._model import Run, RunStep

_SETTINGS = Settings()
_DEFAULT = PublishOptions()
# Values that set every option to something other than its default: each documented header's
# example, and these (a forwarded header's and a callback's; where an example is the default).
_EXTRA = {"Upstash-Forward-X-Secret": "s", "Upstash-Callback-Forward-X-A": "1"}
_GIVEN = [
    *((canonical(name), example) for name, (_, example) in documented(schedule=False).items()),
    *((canonical(name), example) for name, (_, example) in documented(schedule=True).items()),
    *_EXTRA.items(),
]
_KEPT = [o for o in OPTIONS if o.kept]
_RUN = [o for o in OPTIONS if o.run]


def _ids(option: Option) -> str:
    return option.name


_PARTS = {H.FLOW_KEY: (H.FLOW_VALUE,), H.FORWARD: (H.CONTENT_TYPE, H.HEADER_FORWARD)}


def _headers_of(option: Option) -> tuple[str, ...]:
    """The option's headers: its own, and those that configure it (a callback's options,
    flow control's value)."""
    return (option.header, *_PARTS.get(option.header, ()))


def _given() -> PublishOptions:
    return parse_publish(_GIVEN, _SETTINGS, schedule=True)


def _json(record: dict[str, Any]) -> dict[str, Any]:
    """What the store gives back of a record it wrote."""
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(record))
    return loaded


def _message(opts: PublishOptions) -> Message:
    return Message(
        id="msg_1",
        user="u",
        url="http://127.0.0.1:9/job",
        created_at=0,
        not_before=0,
        options=opts.for_message(_SETTINGS.default_retries),
    )


def _run(opts: PublishOptions) -> Run:
    return Run(
        user="u",
        run_id="wfr_1",
        url="http://127.0.0.1:9/wf",
        created_at=0,
        init_message_id="msg_0",
        options=Run.kept(opts),
    )


def test_every_option_is_set_by_one_parse_rule() -> None:
    rules = sorted(rule.option for rule in RULES if rule.option is not None)
    assert rules == sorted(f.name for f in dataclasses.fields(PublishOptions))


def test_every_option_header_is_documented() -> None:
    """An option's header is in the OpenAPI document's publish or schedule headers."""
    known = {*documented(schedule=False), *documented(schedule=True), H.FORWARD}
    assert [o.header for o in OPTIONS if o.header not in known] == []


@pytest.mark.parametrize("option", OPTIONS, ids=_ids)
def test_the_given_values_set_every_option(option: Option) -> None:
    assert getattr(_given(), option.name) != getattr(_DEFAULT, option.name), "give it in _EXTRA"


@pytest.mark.parametrize("option", _KEPT, ids=_ids)
def test_a_message_keeps_each_option_in_its_record(option: Option) -> None:
    """What the views render a message from, read back from the store, is what was given."""
    msg = _message(_given())
    stored = Message.from_record(_json(msg.record()), b"")
    assert getattr(stored.options, option.name) == getattr(_given(), option.name)


def test_a_message_keeps_only_the_options_that_outlive_the_publish() -> None:
    msg = _message(_given())
    assert [name for name in msg.options.record() if name != "retries"] == [
        name for name in KEPT if name != "retries"
    ]
    assert msg.max_retries == 2
    assert _message(_DEFAULT).max_retries == _SETTINGS.default_retries


@pytest.mark.parametrize("option", _KEPT, ids=_ids)
def test_a_dead_letter_retry_takes_each_option_its_headers_give(option: Option) -> None:
    """A retry's headers override the dead letter's options they name, and only those."""
    letter = _message(_DEFAULT)
    given = [(n, v) for n, v in _GIVEN if n.lower().startswith(_headers_of(option))]
    retried = letter.options.taking(
        parse_publish(given, _SETTINGS), named({n.lower() for n, _ in given})
    )
    assert getattr(retried, option.name) == getattr(_given(), option.name)
    others = [o.name for o in _KEPT if o is not option]
    assert [getattr(retried, n) for n in others] == [getattr(letter.options, n) for n in others]


@pytest.mark.parametrize("option", _RUN, ids=_ids)
def test_a_run_keeps_each_option_in_its_record(option: Option) -> None:
    stored = Run.from_record(_json(_run(_given()).record()))
    assert getattr(stored.options, option.name) == getattr(_given(), option.name)


@pytest.mark.parametrize("option", _RUN, ids=_ids)
def test_a_runs_later_messages_take_every_option_it_keeps(option: Option) -> None:
    """A run started with the option gives it to a step that sets none of its own, to its
    restart's first message and to its resume's failed message."""
    run = _run(_given())
    wanted = getattr(_given(), option.name)
    assert getattr(run.applied(PublishOptions()), option.name) == wanted
    step = RunStep("msg_0", "step", b"", 0, {"X-A": ["1"]}, 0, run.url, "PUT")
    restarted = _from_step(step, run, _SETTINGS.default_retries)
    assert getattr(restarted.options, option.name) == wanted
    assert (restarted.options.method, restarted.options.header) == ("PUT", {"X-A": ["1"]})
    failed = _message(_DEFAULT)
    resumed = run.message_options(failed.options, _SETTINGS.default_retries, {option.header})
    assert getattr(resumed, option.name) == wanted


@pytest.mark.parametrize("option", _RUN, ids=_ids)
def test_a_resume_takes_each_run_option_its_headers_give(option: Option) -> None:
    """A run started without the option, resumed with its headers, takes it and keeps the
    others it had."""
    old = _run(dataclasses.replace(_given(), **{option.name: getattr(_DEFAULT, option.name)}))
    items = [(n, v) for n, v in _GIVEN if n.lower().startswith(_headers_of(option))]
    given = {n.lower() for n, _ in items}
    run = _continued(old, "wfr_2", 1, parse_publish(items, _SETTINGS), given)
    assert getattr(run.options, option.name) == getattr(_given(), option.name)
    assert [getattr(run.options, o.name) for o in _RUN if o is not option] == [
        getattr(old.options, o.name) for o in _RUN if o is not option
    ]


# What a schedule leaves out of its options: its runs are due by its cron, never duplicates.
_UNSCHEDULED = ("dedup_id", "content_dedup", "not_before_ms")


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.name not in _UNSCHEDULED], ids=_ids)
def test_a_schedule_publishes_with_each_option_it_was_given(option: Option) -> None:
    opts = dataclasses.replace(_given(), dedup_id=None, content_dedup=False, not_before_ms=None)
    sched = Schedule(
        id="scd_1",
        user="u",
        destination="http://127.0.0.1:9/job",
        cron="* * * * *",
        created_at=0,
        options=dataclasses.asdict(opts),
        caller_ip="",
    )
    stored = Schedule(**_json(sched.record()), body=b"")
    assert getattr(stored.opts, option.name) == getattr(_given(), option.name)


# A message record and a run record as key layout 2 wrote them: options as fields of their own.
_LAYOUT_2_MESSAGE = {
    "id": "msg_old",
    "user": "defaultUser",
    "url": "http://127.0.0.1:9/old",
    "created_at": 1,
    "not_before": 1,
    "max_retries": 2,
    "method": "PUT",
    "header": {"X-Secret": ["s"]},
    "state": "CREATED",
    "due": 1,
    "timeout_ms": 30_000,
    "retry_delay": "1000 * retried",
    "callback": {
        "url": "http://127.0.0.1:9/cb",
        "method": "POST",
        "timeout_ms": None,
        "retries": None,
        "retry_delay": None,
        "delay_ms": 0,
        "header": {},
    },
    "labels": ["a", "b"],
    "redact": ["body"],
    "caller_ip": "127.0.0.1",
    "flow_key": "k",
    "flow_parallelism": 2,
    "flow_rate": 5,
    "flow_period": 60,
    "kind": "message",
    "retried": 0,
}


def test_a_message_record_of_key_layout_2_is_read_with_its_options() -> None:
    msg = Message.from_record(dict(_LAYOUT_2_MESSAGE), b"x")
    assert msg.options == PublishOptions(
        method="PUT",
        header={"X-Secret": ["s"]},
        retries=2,
        timeout_ms=30_000,
        retry_delay="1000 * retried",
        callback=_LAYOUT_2_MESSAGE["callback"],  # type: ignore[arg-type]
        labels=["a", "b"],
        redact=["body"],
        flow={"key": "k", "parallelism": 2, "rate": 5, "period": 60},
    )
    assert (msg.id, msg.caller_ip, msg.body, msg.max_retries) == ("msg_old", "127.0.0.1", b"x", 2)
    assert Message.from_record(_json(msg.record()), b"x") == msg


def test_a_run_record_of_key_layout_2_is_read_with_its_options() -> None:
    record = {
        "user": "u",
        "run_id": "wfr_old",
        "url": "http://127.0.0.1:9/wf",
        "created_at": 1,
        "init_message_id": "msg_0",
        "state": "RUN_STARTED",
        "retries": 4,
        "labels": ["a"],
        "redact": ["body"],
        "flow": {"key": "k", "parallelism": 1, "rate": None, "period": 1},
        "features": ["LazyFetch"],
    }
    run = Run.from_record(dict(record))
    assert run.options == PublishOptions(
        retries=4,
        labels=["a"],
        redact=["body"],
        flow={"key": "k", "parallelism": 1, "rate": None, "period": 1},
    )
    assert run.features == ["LazyFetch"]
    assert Run.from_record(_json(run.record())) == run
