"""The producer: placing an order tells billing through QStash.

Its tests record how it uses QStash into ``orders.contract.json`` (``pytest
--qstash-contract``); billing, the consumer, replays that file to prove it still accepts
what the shop sends (``test_billing.py``).
"""

from __future__ import annotations

import os

from flask import Flask, request
from qstash import QStash

BILLING_URL = "https://billing.example.com/hooks/order-placed"

app = Flask(__name__)


@app.post("/orders")
def place_order() -> tuple[dict[str, str], int]:
    order = request.get_json()
    client = QStash(os.environ["QSTASH_TOKEN"])
    try:
        res = client.message.publish_json(
            url=BILLING_URL,
            body={"order_id": order["id"], "total": order["total"], "currency": "EUR"},
            headers={"X-Shop": "eu-1"},
            retries=5,
        )
    finally:
        client.http._client.close()  # the SDK has no close() of its own
    return {"messageId": res.message_id}, 202  # type: ignore[union-attr]
