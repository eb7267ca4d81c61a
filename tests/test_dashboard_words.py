"""The dashboard says each thing one way: a message's state reads the same in the list, its
detail and its log; a status is said once; a retry time in the past is not "next"; a message's
attempts and its callbacks are numbered apart, in the order they began; a run's step count is
the steps its timeline shows; an empty list has no pager."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from qstash_emulator import Emulator

from .chromium import MARKS, click, css, one, open_view, until
from .helpers import Destination, publish, sdk

pytestmark = MARKS

LOG_CODES = ["CREATED", "ACTIVE", "RETRY", "ERROR", "DELIVERED", "FAILED"]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def page(emulator: Emulator, checked: Any) -> Any:
    return checked


def cells(row: Any) -> list[str]:
    return [str(td.text) for td in css(row, "td")]


def test_a_message_reads_the_same_in_the_list_its_detail_and_its_log(
    page: Any, emulator: Emulator, destination: Destination
) -> None:
    later = publish(emulator, f"{destination.url}/later", **{"Upstash-Delay": "10m"})
    refused = publish(emulator, "http://127.0.0.1:9/refused")
    open_view(page, emulator, "messages")
    for message_id, said in [(later, "delayed"), (refused, "retrying")]:
        row = f'#view tr[data-id="{message_id}"]'
        until(page, f"{said} in the list", lambda d, r=row, s=said: one(d, r + " .badge").text == s)
        click(page, row)
        until(
            page,
            f"{said} in the detail",
            lambda d, m=message_id, s=said: (
                one(d, "#detail h3").text == m and one(d, "#detail-state").text == s
            ),
        )
    # The log rows are in words too (the API's names stay in the badges' titles).
    detail = one(page, "#detail").text
    assert [code for code in LOG_CODES if code in detail] == []
    log = [cells(tr) for tr in css(page, "#detail table tbody tr")]
    assert [state for _, state, _ in log] == ["created", "in flight", "attempt failed", "retrying"]
    assert log[2][2] == "connection refused by 127.0.0.1:9"  # not the HTTP client's words
    assert log[3][2].startswith("retry in ")


def test_a_status_is_said_once_and_a_past_retry_is_not_next(
    page: Any, emulator: Emulator, destination: Destination
) -> None:
    destination.script("/flaky", (500, {}, b"down"))
    sent = publish(
        emulator,
        f"{destination.url}/flaky",
        **{"Upstash-Retries": "1", "Upstash-Retry-Delay": "1000"},
    )
    destination.wait(2, "/flaky")
    open_view(page, emulator, "activity")
    until(page, "the delivery", lambda d: css(d, '#view .badge[data-state="DELIVERED"]'))
    rows = {
        tr.find_element("css selector", ".badge").get_attribute("data-state"): cells(tr)
        for tr in css(page, f'#view tr[data-id="{sent}"]')
    }
    assert rows["ERROR"][4] == "500"  # was "500 status 500"
    assert rows["DELIVERED"][4] == "200"
    assert rows["RETRY"][4].startswith("retry at "), rows["RETRY"]  # was "next 0 s ago (...)"


def test_attempts_and_callbacks_are_numbered_apart_in_the_order_they_began(
    page: Any, emulator: Emulator, destination: Destination
) -> None:
    destination.script("/flaky", (500, {}, b"down"), (500, {}, b"down"))
    sent = publish(
        emulator,
        f"{destination.url}/flaky",
        **{
            "Upstash-Retries": "2",
            "Upstash-Retry-Delay": "0",
            "Upstash-Callback": f"{destination.url}/callback",
        },
    )
    destination.wait(3, "/callback")
    open_view(page, emulator, "activity")

    def shown(d: Any) -> list[tuple[str, str, str]] | None:
        found = [
            (
                a.get_attribute("data-kind"),
                a.find_element("css selector", "strong").text,
                a.get_attribute("data-outcome"),
            )
            for a in css(d, "#detail .attempt")
        ]
        return found if len(found) == 6 else None

    open_detail(page, sent)
    assert until(page, "six attempts", shown) == [
        ("message", "#1", "retry"),
        ("message", "#2", "retry"),
        ("message", "#3", "delivered"),
        ("callback", "#1", "delivered"),
        ("callback", "#2", "delivered"),
        ("callback", "#3", "delivered"),
    ]
    headings = [h.text for h in css(page, "#detail h4")]
    assert "ATTEMPTS (3)" in headings and "CALLBACKS (3)" in headings


def open_detail(page: Any, message_id: str) -> None:
    """Open a message's detail from the Activity view, where its rows stay once it is final."""
    click(page, f'#view tr[data-id="{message_id}"]')
    until(page, "the detail", lambda d: one(d, "#detail h3").text == message_id)


def test_a_runs_step_count_is_the_steps_its_timeline_shows(page: Any, emulator: Emulator) -> None:
    from upstash_workflow import AsyncWorkflowContext

    from .workflow_app import WorkflowApp

    app = WorkflowApp(emulator)
    try:

        @app.route("/order")
        async def order(context: AsyncWorkflowContext[dict[str, int]]) -> None:
            async def reserve() -> str:
                return "reserved"

            await context.run("reserve", reserve)
            await context.sleep("cool-off", 600)

        with sdk(emulator) as client:
            client.message.publish_json(url=f"{app.url}/order", body={"items": 3})
        open_view(page, emulator, "workflows")

        def sleeping(d: Any) -> Any:
            row = one(d, "#view tbody tr[data-id]")
            return row if cells(row)[3] == "4" else None  # init, reserve, cool-off, next

        row = until(page, "the run asleep", sleeping)
        row.click()
        until(page, "the timeline", lambda d: len(css(d, "#run-steps .attempt")) == 4)
        assert one(page, "#detail h4").text == "STEPS (4)"
    finally:
        app.stop()


def test_an_empty_list_has_no_pager(page: Any, emulator: Emulator) -> None:
    for view, empty in [
        ("messages", "No message is waiting."),
        ("dlq", "The dead-letter queue is empty."),
        ("workflows", "No workflow runs."),
    ]:
        open_view(page, emulator, view)
        until(page, f"the empty {view} list", lambda d, e=empty: one(d, "#view .empty").text == e)
        assert css(page, "#view .pager") == []
