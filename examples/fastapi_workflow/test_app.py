"""The order workflow under test: the app mounted in process, the payment provider scripted,
a day of cooling off on the virtual clock, runs asserted step by step."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fastapi_workflow.app import COOLING_OFF_S, PAYMENTS_URL, PUBLIC_URL, Ledger, create_app
from qstash_emulator.pytest import QStashFixture, reply

ORDER = {"order_id": "o-1", "items": 3, "card": "4242"}


@pytest.fixture
def ledger(qstash: QStashFixture) -> Ledger:
    ledger = Ledger()
    app = create_app(ledger)  # after the fixture set QSTASH_* for this test
    qstash.mount(PUBLIC_URL, app)  # deliveries to the public URL reach the app in process
    response = asyncio.run(_post(app, "/orders", ORDER))
    assert response.status_code == 202
    return ledger


async def _post(app: Any, path: str, body: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        return await client.post(path, json=body)


def test_an_order_is_reserved_charged_cooled_off_and_confirmed(
    qstash: QStashFixture, ledger: Ledger
) -> None:
    payments = qstash.endpoint(PAYMENTS_URL, reply(200, json={"receipt": "r-1"}))
    started = qstash.now

    run = qstash.wait_for_run(url=f"{PUBLIC_URL}/workflows/order")

    assert run.state == "RUN_SUCCESS"
    assert run.step_names == ["reserve stock", "charge card", "cooling off", "confirm"]
    assert run.outputs["confirm"] == "r-1"
    assert run.step("charge card").out["status"] == 200
    assert payments.last.json() == {"order": "o-1", "card": "4242", "amount": 30}
    assert qstash.now - started >= timedelta(seconds=COOLING_OFF_S)  # a virtual day, no wait
    assert ledger.reserved == {"o-1": 3} and ledger.confirmed == ["o-1"]


def test_a_refused_payment_fails_the_run_and_calls_the_failure_function(
    qstash: QStashFixture, ledger: Ledger
) -> None:
    qstash.endpoint(PAYMENTS_URL).respond(402)

    run = qstash.wait_for_run(url=f"{PUBLIC_URL}/workflows/order")

    assert run.state == "RUN_FAILED"
    assert run.step_names == ["reserve stock", "charge card"]
    assert run.failure is not None and run.failure["state"] == "CALLBACK_SUCCESS"
    assert "payment refused: 402" in ledger.failed["o-1"]
    assert ledger.confirmed == []
    (letter,) = qstash.dead_letters()  # the failing step is a dead letter of the run
    assert letter["dlqId"] == run.dlq_id
