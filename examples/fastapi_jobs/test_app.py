"""The job service under test: published by the SDK, delivered into the app, no network."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fastapi_jobs.app import PUBLIC_URL, app, processed, reports
from qstash_emulator.pytest import QStashFixture


class AppClient:
    """Calls the app in process (a small stand-in for Starlette's AppClient)."""

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
                return await client.post(path, **kwargs)

        return asyncio.run(send())


@pytest.fixture
def client(qstash: QStashFixture) -> Iterator[AppClient]:
    processed.clear()
    reports.clear()
    qstash.mount(PUBLIC_URL, app)  # deliveries to the public URL reach the app in process
    yield AppClient()


def test_an_order_is_processed_by_the_job(client: AppClient, qstash: QStashFixture) -> None:
    answer = client.post("/orders", json={"order_id": "o-1", "amount": 30})
    assert answer.status_code == 202

    delivery = qstash.wait_for(path="/jobs/process")

    assert delivery.message_id == answer.json()["messageId"]
    assert delivery.status == 204
    assert processed == {"o-1": {"order_id": "o-1", "amount": 30}}


def test_a_failed_attempt_is_retried_after_the_default_backoff(
    client: AppClient, qstash: QStashFixture
) -> None:
    qstash.endpoint(f"{PUBLIC_URL}/jobs/process").respond(503)  # one outage, then the app
    client.post("/orders", json={"order_id": "o-2", "amount": 5})

    qstash.run_until_idle()

    failed, succeeded = qstash.deliveries
    assert failed.status == 503 and failed.outcome == "retry"
    assert succeeded.started_at - failed.started_at == 12_182  # e^2.5 s, on the virtual clock
    assert "o-2" in processed


def test_bad_input_goes_straight_to_the_dead_letter_queue(
    client: AppClient, qstash: QStashFixture
) -> None:
    client.post("/orders", json={"order_id": "o-3", "amount": 0})

    qstash.run_until_idle()

    entry = qstash.assert_dead_lettered(path="/jobs/process")
    assert entry["responseStatus"] == 489
    assert entry["responseBody"] == "amount must be positive"
    assert qstash.deliveries.call_count == 1  # non-retryable: no retries were spent
    assert processed == {}


def test_the_nightly_report_runs_at_two(client: AppClient, qstash: QStashFixture) -> None:
    assert client.post("/schedules/nightly-report").json() == {"scheduleId": "nightly-report"}
    next_run = qstash.schedule_times("nightly-report", count=1)[0]

    qstash.advance("1d")  # one virtual day

    [run] = qstash.deliveries.filter(path="/jobs/report")
    assert run.started_at == next_run
    assert (next_run // 1000) % 86_400 == 2 * 3600  # 02:00 UTC
    assert reports == [0]


def test_forged_requests_are_rejected(client: AppClient) -> None:
    answer = client.post(
        "/jobs/process", json={"order_id": "x", "amount": 1}, headers={"Upstash-Signature": "x"}
    )
    assert answer.status_code == 401
