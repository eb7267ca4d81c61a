"""The dashboard in a real browser (Debian's headless Chromium through Selenium), used as a
person would: things appear without a reload, clicks act, and the page logs no errors. The
README's pictures are taken here (see tests/chromium.py for where they go).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qstash_emulator import DEFAULT_USERS, Emulator, VirtualClock

from .chromium import (
    ELSEWHERE,
    MARKS,
    REBOUND,
    click,
    css,
    one,
    open_view,
    until,
)
from .helpers import Destination, JsApp, add_delayed, api, auth, sdk

pytestmark = MARKS


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """An emulator on each backend; on Redis under a key prefix of the test's own."""
    if request.param == "memory":
        with Emulator() as emu:
            yield emu
        return
    redis_url = request.getfixturevalue("redis_url")
    with Emulator(redis_url=redis_url, redis_prefix=f"qe-dash-{uuid.uuid4().hex[:8]}:") as emu:
        yield emu
        emu.reset()


@pytest.fixture
def page(emulator: Emulator, checked: Any) -> Any:
    """``checked``, for a test on the ``emulator`` fixture (which outlives it)."""
    return checked


@pytest.fixture
def shot(page: Any, emulator: Emulator, shots: Path) -> Callable[[str], None]:
    """Save what the browser shows as ``name``.png (the in-memory run's only: one set)."""

    def save(name: str) -> None:
        if not emulator.settings.redis_url:
            page.save_screenshot(str(shots / f"{name}.png"))

    return save


def test_published_message_appears_live_and_its_detail_shows_the_forwarded_header(
    shot: Callable[[str], None], page: Any, emulator: Emulator, destination: Destination
) -> None:
    open_view(page, emulator, "messages")
    page.execute_script("window.notReloaded = true")
    with sdk(emulator) as client:
        sent = client.message.publish(
            url=f"{destination.url}/later",
            body='{"order": 42}',
            headers={"X-Shop": "north"},
            delay=600,
        )
        for n in range(3):
            client.message.publish(url=f"{destination.url}/more/{n}", body="x", delay=900)
    row = one(page, f'tr[data-id="{sent.message_id}"]', "the published message's row")
    assert "delayed" in row.text and "/later" in row.text
    assert page.execute_script("return window.notReloaded") is True

    row.click()
    forwarded = one(page, "#detail #forwarded-headers")
    assert "X-Shop" in forwarded.text and "north" in forwarded.text
    assert '{"order": 42}' in one(page, "#detail").text
    shot("messages")

    click(page, '#detail button[data-action="deliver-now"]')
    got = destination.wait(1, "/later")
    assert got[0].headers["x-shop"] == "north"
    attempt = one(page, '#detail .attempt[data-outcome="delivered"]', "the attempt in the detail")
    assert "signature valid (current key)" in attempt.text
    until(
        page, "the row to leave the list", lambda d: not css(d, f'tr[data-id="{sent.message_id}"]')
    )

    open_view(page, emulator, "activity")
    until(page, "the delivered row", lambda d: css(d, '#view .badge[data-state="DELIVERED"]'))
    assert one(page, '.card[data-state="delayed"] .n').text == "3"
    shot("activity")


def test_retry_a_dead_letter_by_clicking_and_see_it_delivered(
    shot: Callable[[str], None], page: Any, emulator: Emulator, destination: Destination
) -> None:
    destination.script("/flaky", (500, {"X-Why": "down"}, b"try later"))
    with sdk(emulator) as client:
        sent = client.message.publish(url=f"{destination.url}/flaky", body="payload", retries=0)
        until(page, "the dead letter", lambda d: client.dlq.list().messages)
    open_view(page, emulator, "dlq")
    row = one(page, f'tr[data-id="{sent.message_id}"]')
    assert "500" in row.text
    row.click()
    detail = one(page, "#detail")
    until(
        page, "the response body", lambda d: "try later" in detail.text and "X-Why" in detail.text
    )
    shot("dead-letters")

    click(page, f'tr[data-id="{sent.message_id}"] button[data-action="retry"]')
    retried = destination.wait(2, "/flaky")
    assert retried[1].body == b"payload"
    until(page, "the dead letter to go", lambda d: not css(d, f'tr[data-id="{sent.message_id}"]'))
    open_view(page, emulator, "activity")
    until(
        page, "the retried copy delivered", lambda d: css(d, '#view .badge[data-state="DELIVERED"]')
    )


def test_pause_a_schedule(
    shot: Callable[[str], None], page: Any, emulator: Emulator, destination: Destination
) -> None:
    with sdk(emulator) as client:
        schedule = client.schedule.create(destination=f"{destination.url}/cron", cron="*/5 * * * *")
        open_view(page, emulator, "schedules")
        row = one(page, f'tr[data-id="{schedule}"]')
        assert "*/5 * * * *" in row.text and "in " in row.text  # next run times
        shot("schedules")
        click(page, f'tr[data-id="{schedule}"] button[data-action="pause"]')
        one(page, f'tr[data-id="{schedule}"] button[data-action="resume"]', "the Resume button")
        assert client.schedule.get(schedule).paused is True


def test_send_from_the_publish_form_and_see_it_arrive(
    shot: Callable[[str], None], page: Any, emulator: Emulator, destination: Destination
) -> None:
    open_view(page, emulator, "publish")
    one(page, "#p-destination").send_keys(f"{destination.url}/from-form")
    one(page, "#p-headers").send_keys("X-From-Form: yes")
    one(page, "#p-body").send_keys("hello from the form")
    one(page, "#p-retries").send_keys("2")
    shot("publish")
    one(page, "#p-send").click()
    (got,) = destination.wait(1, "/from-form")
    assert got.body == b"hello from the form"
    assert got.headers["x-from-form"] == "yes"
    link = one(page, "#p-result a[data-id]")
    one(page, '#detail .attempt[data-outcome="delivered"]', "the delivered attempt, live")
    assert link.get_attribute("data-id") == got.headers["upstash-message-id"]


def test_switch_users_and_see_only_that_users_things(
    page: Any, emulator: Emulator, destination: Destination
) -> None:
    other = DEFAULT_USERS[1]
    with sdk(emulator) as mine, sdk(emulator, other.token) as theirs:
        my_id = mine.message.publish(url=f"{destination.url}/mine", body="x", delay=600).message_id
        their_id = theirs.message.publish(
            url=f"{destination.url}/theirs", body="x", delay=600
        ).message_id
        mine.queue.upsert("my-queue")
        theirs.queue.upsert("their-queue")
    open_view(page, emulator, "messages")
    one(page, f'tr[data-id="{my_id}"]')
    assert not css(page, f'tr[data-id="{their_id}"]')

    from selenium.webdriver.support.ui import Select

    Select(one(page, "select#user")).select_by_value(other.user_id)
    one(page, f'tr[data-id="{their_id}"]', "the other user's message")
    assert not css(page, f'tr[data-id="{my_id}"]')
    one(page, '#tabs button[data-view="queues"]').click()
    one(page, 'tr[data-id="their-queue"]')
    assert not css(page, 'tr[data-id="my-queue"]')
    assert f"user={other.user_id}" in page.current_url


def test_ten_thousand_messages_are_paged(page: Any, emulator: Emulator) -> None:
    emulator.call(add_delayed(emulator, 10_000))
    open_view(page, emulator, "messages")
    until(page, "the pager", lambda d: one(d, "#page-info").text == "1–50 of 10000")
    assert len(css(page, "#view tbody tr")) == 50
    assert one(page, '.chips button[data-state="delayed"]').text == "delayed 10000"
    one(page, ".pager button:last-child").click()
    until(page, "page 2", lambda d: one(d, "#page-info").text == "51–100 of 10000")
    assert len(css(page, "#view tbody tr")) == 50


def test_a_rebound_name_gets_no_page_and_other_origins_cannot_act(
    page: Any, emulator: Emulator, destination: Destination
) -> None:
    # DNS rebinding: the browser resolves the attacker's name to the emulator.
    page.get(f"http://{REBOUND}:{emulator.port}/_dashboard/api/users")
    assert "the dashboard answers only on the addresses it serves on" in page.page_source
    assert emulator.token not in page.page_source
    page.get_log("browser")  # the 403 above is logged by the browser, as it should be

    # Another origin (another port) tries to read the token list and to retry a dead letter.
    destination.script("/fails", (500, {}, b"no"))
    with sdk(emulator) as client:
        client.message.publish(url=f"{destination.url}/fails", body="x", retries=0)
        until(page, "the dead letter", lambda d: client.dlq.list().messages)
        dlq_id = client.dlq.list().messages[0].dlq_id
    evil = f"""<!doctype html><title>waiting</title><script>
    const base = "{emulator.url}";
    const out = {{}};
    async function attempt(name, f) {{
      try {{ const r = await f(); out[name] = "read " + (await r.text()).slice(0, 80); }}
      catch (e) {{ out[name] = "blocked"; }}
    }}
    (async () => {{
      await attempt("users", () => fetch(base + "/_dashboard/api/users"));
      await attempt("retry", () => fetch(base + "/v2/dlq/retry/{dlq_id}", {{
        method: "POST", headers: {{Authorization: "Bearer {emulator.token}"}} }}));
      document.title = JSON.stringify(out);
    }})();
    </script>"""
    destination.script("/evil.html", (200, {"Content-Type": "text/html"}, evil.encode()))
    page.get(f"{destination.url}/evil.html")
    title = until(
        page, "the attacker page's verdict", lambda d: d.title if "{" in d.title else None
    )
    assert json.loads(title) == {"users": "blocked", "retry": "blocked"}
    with sdk(emulator) as client:
        assert [m.dlq_id for m in client.dlq.list().messages] == [dlq_id]  # not retried
    page.get_log("browser")  # the blocked requests are logged as CORS errors: expected here


def test_a_form_on_another_site_cannot_use_the_well_known_token(
    page: Any, emulator: Emulator, destination: Destination
) -> None:
    # No CORS is needed to send a form: the browser only withholds the answer. The API refuses
    # what the browser marks as coming from another site.
    destination.script("/fails", (500, {}, b"no"))
    with sdk(emulator) as client:
        client.message.publish(url=f"{destination.url}/fails", body="x", retries=0)
        until(page, "the dead letter", lambda d: client.dlq.list().messages)
        dlq_id = client.dlq.list().messages[0].dlq_id
    target = f"{emulator.url}/v2/dlq/retry/{dlq_id}?qstash_token={emulator.token}"
    form = f"""<!doctype html><form method="post" action="{target}"></form>
    <script>document.forms[0].submit()</script>"""
    destination.script("/form.html", (200, {"Content-Type": "text/html"}, form.encode()))
    port = destination.url.rsplit(":", 1)[1]
    page.get(f"http://{ELSEWHERE}:{port}/form.html")
    until(
        page,
        "the API's refusal",
        lambda d: "browser requests from other origins are refused" in d.page_source,
    )
    assert "Sec-Fetch-Site: cross-site" in page.page_source
    with sdk(emulator) as client:
        assert [m.dlq_id for m in client.dlq.list().messages] == [dlq_id]  # not retried
    page.get_log("browser")  # the 403 is logged by the browser, as it should be


def test_a_workflow_run_shows_its_steps_as_a_timeline_and_can_be_cancelled(
    shot: Callable[[str], None], page: Any, emulator: Emulator
) -> None:
    from upstash_workflow import AsyncWorkflowContext

    from .workflow_app import WorkflowApp

    app = WorkflowApp(emulator)
    try:

        @app.route("/order")
        async def order(context: AsyncWorkflowContext[dict[str, int]]) -> str:
            async def reserve() -> str:
                return f"reserved {context.request_payload['items']}"

            await context.run("reserve", reserve)
            await context.sleep("cool-off", 600)
            return "shipped"

        with sdk(emulator) as client:
            client.message.publish_json(url=f"{app.url}/order", body={"items": 3})
        open_view(page, emulator, "workflows")
        run_id = until(
            page,
            "the run's row",
            lambda d: one(d, "#view tbody tr[data-id]").get_attribute("data-id"),
        )
        click(page, f'tr[data-id="{run_id}"]')
        until(page, "the reserve step", lambda d: css(d, '#run-steps [data-step="reserve"]'))

        # The text is read where it is waited for: the live view may redraw the steps between
        # a look-up and a later read (a stale element).
        def sleeping(d: Any) -> str | None:
            text: str = one(d, "#run-steps").text
            return text if "sleep 600 s" in text else None

        steps = until(page, "the sleep waiting", sleeping)
        assert "reserved 3" in steps
        shot("workflow-runs")

        click(page, '#detail button[data-action="cancel-run"]')
        until(page, "the run cancelled", lambda d: css(d, '#detail [data-state="RUN_CANCELED"]'))
        with api(emulator, anonymous=True) as http:
            runs = http.get(
                "/v2/workflows/logs",
                params={"workflowRunId": run_id},
                headers=auth(emulator),
            ).json()["runs"]
        assert runs[0]["workflowState"] == "RUN_CANCELED"
    finally:
        app.stop()


@pytest.mark.node
@pytest.mark.skipif(
    not (Path(__file__).parent / "js" / "node_modules" / "@upstash" / "workflow").is_dir(),
    reason="tests/js/node_modules is missing: run `npm install` in tests/js",
)
def test_find_the_runs_waiting_for_an_event_and_notify_them(
    shot: Callable[[str], None], page: Any, emulator: Emulator
) -> None:

    js = JsApp(emulator)  # the official JS SDK: its waitForEvent
    try:
        run_id = js.do("trigger", {"url": js.url + "/waiting", "body": {"eventId": "order-paid"}})[
            "workflowRunId"
        ]
        until(page, "the run to wait", lambda d: js.do("getWaiters", {"eventId": "order-paid"}))
        open_view(page, emulator, "workflows")
        one(page, "#w-event").send_keys("order-paid")
        click(page, 'button[data-action="find-waiters"]')
        one(page, f'#waits tr[data-waiter="{run_id}"]', "the waiting run")
        one(page, "#w-data").send_keys('{"amount": 5}')
        shot("workflow-waits")
        click(page, 'button[data-action="notify"]')
        until(page, "the answer", lambda d: one(d, "#w-answer").text == "notified 1")
        until(page, "the run to get the event", lambda d: js.results("waiting"))
        assert js.results("waiting") == [
            {"runId": run_id, "eventData": {"amount": 5}, "timeout": False}
        ]
        click(page, f'#view tr[data-id="{run_id}"]')
        until(page, "the run to succeed", lambda d: css(d, '#detail [data-state="RUN_SUCCESS"]'))
    finally:
        js.stop()


def test_next_delivery_is_counted_on_the_emulators_clock(checked: Any) -> None:
    page = checked
    with Emulator(clock=VirtualClock()) as emulator:
        with sdk(emulator) as client:
            sent = client.message.publish(url="http://127.0.0.1:9/x", body="x", delay=600)
        emulator.clock.advance(540)  # a virtual clock 9 minutes ahead of this browser's
        open_view(page, emulator, "messages")
        row = one(page, f'tr[data-id="{sent.message_id}"]')
        assert "in 1 min 0 s" in row.text, row.text
        page.get("about:blank")
