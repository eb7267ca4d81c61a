"""An order workflow: reserve stock, charge through a payment provider, wait out a day of
cooling off, then confirm; a failed order is recorded by the failure function.

Built with ``upstash-workflow``'s FastAPI ``serve``. The SDK reads QSTASH_TOKEN, QSTASH_URL and
the signing keys when a workflow is served, so the app is made by ``create_app()`` once the
environment is set (in tests, by the ``qstash`` fixture), not when the module is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from qstash import QStash
from upstash_workflow import AsyncWorkflowContext
from upstash_workflow.fastapi import Serve

PUBLIC_URL = "https://shop.example.com"  # where QStash reaches this service in production
PAYMENTS_URL = "https://payments.example.com/charge"  # the payment provider's API
COOLING_OFF_S = 86_400


class Order(BaseModel):
    order_id: str
    items: int
    card: str


@dataclass
class Ledger:
    """What the service did, kept in memory for the example (a database in real life)."""

    reserved: dict[str, int] = field(default_factory=dict)
    confirmed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def create_app(ledger: Ledger) -> FastAPI:
    app = FastAPI()
    serve = Serve(app)

    @app.post("/orders", status_code=202)
    def place_order(order: Order) -> dict[str, str]:
        """Start the order's workflow run: a QStash publish to the workflow endpoint."""
        client = QStash(os.environ["QSTASH_TOKEN"])  # the SDK reads QSTASH_URL itself
        try:
            res = client.message.publish_json(
                url=f"{PUBLIC_URL}/workflows/order", body=order.model_dump()
            )
        finally:
            client.http._client.close()  # the SDK has no close() of its own
        return {"messageId": res.message_id}  # type: ignore[union-attr]

    async def order_failed(
        context: AsyncWorkflowContext[dict[str, Any]],
        status: int,
        response: str,
        headers: dict[str, str],
    ) -> None:
        ledger.failed[context.request_payload["order_id"]] = response

    @serve.post("/workflows/order", failure_function=order_failed, retries=2)
    async def order_workflow(context: AsyncWorkflowContext[dict[str, Any]]) -> None:
        # The SDK runs the code before the first step on every call, a call's answer
        # included (with that answer as the payload): read the order inside the step.
        payload = context.request_payload

        async def reserve() -> dict[str, Any]:
            order = Order.model_validate(payload)
            ledger.reserved[order.order_id] = order.items
            return order.model_dump()

        order = Order.model_validate(await context.run("reserve stock", reserve))

        charge = await context.call(
            "charge card",
            url=PAYMENTS_URL,
            method="POST",
            body={"order": order.order_id, "card": order.card, "amount": order.items * 10},
        )
        if charge.status != 200:
            raise RuntimeError(f"payment refused: {charge.status} {charge.body}")

        await context.sleep("cooling off", COOLING_OFF_S)

        async def confirm() -> str:
            ledger.confirmed.append(order.order_id)
            return charge.body["receipt"]

        await context.run("confirm", confirm)

    return app
