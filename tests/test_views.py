"""Every publish header leaves its mark on every view of what it configured (message, log row,
DLQ entry, schedule) and on the copy a dead-letter retry makes: a header added to the header
table and the options, but forgotten in a view or a copy, fails here by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from qstash_emulator.model.headers import H, documented, parse_publish
from qstash_emulator.model.message import Message
from qstash_emulator.model.options import PublishOptions, named
from qstash_emulator.model.views import dlq_view, log_row, message_view
from qstash_emulator.server.config import Settings
from qstash_emulator.services.schedules import Schedule, schedule_view

_PUBLISH_HEADERS = documented(schedule=False)
_SETTINGS = Settings()
_URL = "http://127.0.0.1:9/job"
# What every publish below has: a body and forwarded headers, so that redaction shows.
_BASE = [("Upstash-Forward-X-Secret", "s"), ("X-Plain", "p")]
# Values that differ from what a publish without the header gets (the table's examples, but
# where the example is the default).
_VALUES = {H.HEADER_FORWARD: "true", H.REDACT: "body,header[X-Secret]"}
# Headers given together.
_TOGETHER = {H.FLOW_KEY: [(H.FLOW_VALUE, "parallelism=2")], H.FLOW_VALUE: [(H.FLOW_KEY, "k")]}
# Headers no view shows, and why.
_UNSHOWN = {
    H.DEDUP_ID: "QStash shows no deduplication id; it acts at publish",
    H.CONTENT_DEDUP: "as Upstash-Deduplication-Id",
    # A workflow run's headers are shown by the run's logs (tests/test_workflow_logs.py).
    H.RUN_ID: "run",
    H.RUN_INIT: "run",
    H.RUN_URL: "run",
    H.CALL_TYPE: "run",
    H.INVOKE: "run",
    H.FEATURE_SET: "run",
    H.TRIGGER_BY_SDK: "run",
}
# What a schedule does not take, or shows as the messages it publishes do not.
_NOT_SCHEDULED = {H.NOT_BEFORE: "a schedule's runs are due by its cron"}

HEADERS = sorted(set(_PUBLISH_HEADERS) - set(_UNSHOWN))


def _items(name: str | None) -> list[tuple[str, str]]:
    if name is None:
        return list(_BASE)
    value = _VALUES.get(name, _PUBLISH_HEADERS[name][1])
    return [*_BASE, (name, value), *_TOGETHER.get(name, [])]


def _message(opts: PublishOptions) -> Message:
    due = opts.due(1_000)
    return Message(
        id="msg_1",
        user="u",
        url=_URL,
        created_at=1_000,
        not_before=due,
        due=due,
        body=b'{"card": "4242"}',
        options=opts.for_message(_SETTINGS.default_retries),
    )


def _schedule(opts: PublishOptions) -> Schedule:
    return Schedule(
        id="scd_1",
        user="u",
        destination=_URL,
        cron="* * * * *",
        created_at=1_000,
        options=dataclasses.asdict(opts),
        caller_ip="",
        body=b'{"card": "4242"}',
    )


_VIEWS: dict[str, Callable[[Message], dict[str, Any]]] = {
    "message": message_view,
    "log row": lambda msg: log_row(msg, "CREATED", 1_000),
    "dlq entry": lambda msg: dlq_view(msg, "1-0", {"status": 500}),
}


@pytest.mark.parametrize("name", HEADERS)
def test_every_view_shows_every_publish_header(name: str) -> None:
    plain = _message(parse_publish(_items(None), _SETTINGS))
    given = _message(parse_publish(_items(name), _SETTINGS))
    same = [view for view, render in _VIEWS.items() if render(plain) == render(given)]
    assert same == [], f"{name} leaves no mark on these views: {same}"


@pytest.mark.parametrize("name", sorted(set(HEADERS) - set(_NOT_SCHEDULED)))
def test_the_schedule_view_shows_every_publish_header(name: str) -> None:
    plain = parse_publish(_items(None), _SETTINGS, schedule=True)
    given = parse_publish(_items(name), _SETTINGS, schedule=True)
    view = schedule_view(_schedule(given), _SETTINGS.default_retries)
    assert schedule_view(_schedule(plain), _SETTINGS.default_retries) != view, name


@pytest.mark.parametrize("name", HEADERS)
def test_a_dead_letter_retry_takes_every_publish_header(name: str) -> None:
    """A retry's headers override what the dead letter had, as a publish would set them."""
    letter = _message(parse_publish(_items(None), _SETTINGS))
    items = _items(name)
    changes = letter.options.taking(
        parse_publish(items, _SETTINGS), named({n.lower() for n, _ in items})
    )
    retried = dataclasses.replace(letter, options=changes)
    published = _message(parse_publish(_items(name), _SETTINGS))
    wanted = {k: v for k, v in message_view(published).items() if k != "notBefore"}
    got = {k: v for k, v in message_view(retried).items() if k != "notBefore"}
    assert got == wanted, name
