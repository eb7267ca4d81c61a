"""The producer's tests. With ``--qstash-contract examples/contracts/orders.contract.json``
they also check that the shop still uses QStash as the committed contract says."""

from __future__ import annotations

from .shop import BILLING_URL, app


def test_placing_an_order_tells_billing(qstash) -> None:
    billing = qstash.endpoint(BILLING_URL, 200)
    answer = app.test_client().post("/orders", json={"id": 1001, "total": 25.5})
    assert answer.status_code == 202
    delivery = qstash.wait_for(url=billing.url)
    assert delivery.json() == {"order_id": 1001, "total": 25.5, "currency": "EUR"}
    assert delivery.header("X-Shop") == "eu-1"
