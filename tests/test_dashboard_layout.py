"""The dashboard's layout at the common screen widths, with the detail panel open: every view's
rows stay inside their table and the table inside the page (no sideways scrolling), every
button is on screen, and text wraps between words or before a URL's path segments, never
inside one ("POST htt / p://127.0. / 0.1:..."). Each view is saved as a screenshot per width,
in widths/ of the screenshot folder (tests/chromium.py says where that is).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qstash_emulator import Emulator

from .chromium import MARKS, click, css, one, open_view, until, viewport
from .helpers import Destination, auth, sdk, wait_until

pytestmark = MARKS

WIDTHS = [1280, 1440, 1600, 1920]
HEIGHT = 800
# Each view, its heading, and what shows once its data is in.
VIEWS = [
    ("activity", "Activity", "#view tbody tr"),
    ("messages", "Messages", "#view tr[data-id]"),
    ("publish", "Publish", "#publish"),
    ("dlq", "Dead letters", "#view tr[data-dlq]"),
    ("schedules", "Schedules", "#view tr[data-id]"),
    ("queues", "Queues", "#view tr[data-id]"),
    ("groups", "URL groups", "#view tr[data-id]"),
    ("flow", "Flow control", "#view tr[data-id]"),
    ("keys", "Signing keys", "#view dl.kv"),
    ("workflows", "Workflow runs", "#view tr[data-id]"),
]
# Views whose rows open a detail of their own; the others keep the one already open.
OPENS = {
    "messages": "#view tr[data-id]",
    "dlq": "#view tr[data-dlq]",
    "workflows": "#view tr[data-id]",
}

# What is out of place on the page, as sentences (an empty list when all is well).
PROBLEMS = (Path(__file__).parent / "layout_problems.js").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def world(destination_server: Destination) -> Iterator[Emulator]:
    """An emulator with something in every view: messages delayed, retrying (refused and
    answered 500), queued and dead-lettered, a schedule, a queue, a URL group, a flow-control
    key and a workflow run that sleeps."""
    from upstash_workflow import AsyncWorkflowContext

    from .workflow_app import WorkflowApp

    dest = destination_server
    dest.script("/orders/42/invoice", *[(500, {}, b"down")] * 4)
    dest.script("/reports/monthly", (500, {"X-Why": "down"}, b"try later"))
    with Emulator() as emu, sdk(emu) as client:
        creds = auth(emu)
        app = WorkflowApp(emu)
        try:

            @app.route("/workflows/order")
            async def order(context: AsyncWorkflowContext[dict[str, int]]) -> None:
                await context.sleep("cool-off", 600)

            client.message.publish(
                url=f"{dest.url}/api/orders/later?tenant=north&region=eu-west-1",
                body='{"order": 42}',
                headers={"X-Shop": "north"},
                delay=600,
            )
            for n in range(3):
                client.message.publish(url=f"{dest.url}/more/{n}", body="x", delay=900)
            client.message.publish(url="http://127.0.0.1:9/refused", body="x")
            client.message.publish(
                url=f"{dest.url}/orders/42/invoice", body="x", callback=f"{dest.url}/callbacks"
            )
            client.message.publish(url=f"{dest.url}/reports/monthly", body="x", retries=0)
            client.queue.upsert("emails", parallelism=2)
            client.queue.pause("emails")
            client.message.enqueue(queue="emails", url=f"{dest.url}/emails/send", body="x")
            schedule = client.schedule.create(
                destination=f"{dest.url}/cron/daily-report", cron="*/5 * * * *"
            )
            httpx.post(f"{emu.url}/_emulator/run-now/{schedule}", headers=creds)
            client.url_group.upsert_endpoints(
                url_group="fan-out",
                endpoints=[{"url": f"{dest.url}/a"}, {"url": f"{dest.url}/b", "name": "bee"}],
            )
            client.message.publish(
                url=f"{dest.url}/limited",
                body="x",
                flow_control={"key": "tenant-north", "parallelism": 2, "rate": 10, "period": 60},
            )
            client.message.publish_json(url=f"{app.url}/workflows/order", body={"items": 3})

            def settled() -> bool:
                def get(path: str, key: str, **params: str) -> list[Any]:
                    r = httpx.get(f"{emu.url}{path}", params=params, headers=creds)
                    return list(r.json()[key])

                retrying = get("/_emulator/messages", "messages", state="retrying")
                dead = get("/v2/dlq", "messages")
                ran = client.schedule.get(schedule).last_schedule_states
                runs = get("/v2/workflows/logs", "runs")
                return len(retrying) == 2 and bool(dead) and bool(runs) and bool(ran)

            wait_until(settled, 15, "the retries, the dead letter and the run")
            yield emu
        finally:
            app.stop()


@pytest.mark.parametrize("width", WIDTHS)
def test_every_view_fits_with_the_detail_open(
    width: int, world: Emulator, checked: Any, shots: Path
) -> None:
    page = checked
    folder = shots / "widths"  # apart from the README's pictures when both go to one place
    folder.mkdir(exist_ok=True)
    viewport(page, width, HEIGHT)
    open_view(page, world, "messages")
    click(page, "#view tr[data-id]")
    one(page, "#detail h4", "the message's detail")
    found = {}
    for view, heading, ready in VIEWS:
        click(page, f'#tabs button[data-view="{view}"]')
        until(page, f"the {view} view", lambda d, h=heading: one(d, "#view h2").text == h)
        one(page, ready, f"the {view} view's content")
        if view in OPENS:
            click(page, OPENS[view])
            until(page, f"the {view} detail", lambda d: css(d, "#detail:not([hidden]) h3"))
        page.save_screenshot(str(folder / f"{view}-{width}.png"))
        found[view] = page.execute_script(PROBLEMS)
    assert found == {view: [] for view, _, _ in VIEWS}
