"""The consumer's tests: billing replays the shop's contract, so a change on either side
that breaks the other fails here or in the shop's contract check."""

from __future__ import annotations

from pathlib import Path

from . import billing

CONTRACT = Path(__file__).parent / "orders.contract.json"


def test_billing_accepts_what_the_shop_sends(qstash) -> None:
    qstash.mount("https://billing.example.com", billing.app)
    report = qstash.replay_contract(CONTRACT)
    report.check()
    assert billing.billed[-1] == {"order_id": 1001, "total": 25.5, "currency": "EUR"}
