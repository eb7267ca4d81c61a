"""The shop under test: Django mounted as WSGI, its import-time client reaching each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.wsgi import get_wsgi_application
from django.test import Client
from shop import views

from qstash_emulator.pytest import QStashFixture


@pytest.fixture
def shop(qstash: QStashFixture) -> Iterator[Client]:
    views.restocked.clear()
    qstash.mount("https://shop.example.com", get_wsgi_application())
    yield Client()


def test_an_order_restocks_through_the_job(shop: Client, qstash: QStashFixture) -> None:
    answer = shop.post("/orders", {"sku": "tea", "count": 3}, content_type="application/json")
    assert answer.status_code == 202

    delivery = qstash.wait_for(path="/hooks/restock")

    assert delivery.message_id == answer.json()["messageId"]
    assert delivery.status == 204  # the app verified the signature itself
    assert views.restocked == [{"sku": "tea", "count": 3}]


def test_a_failed_restock_is_retried(shop: Client, qstash: QStashFixture) -> None:
    qstash.endpoint("https://shop.example.com/hooks/restock").respond(503)
    shop.post("/orders", {"sku": "jam", "count": 1}, content_type="application/json")

    qstash.run_until_idle()

    assert [d.status for d in qstash.deliveries] == [503, 204]
    assert views.restocked == [{"sku": "jam", "count": 1}]


def test_each_test_sees_only_its_own_messages(shop: Client, qstash: QStashFixture) -> None:
    assert qstash.client().dlq.list().messages == []
    assert qstash.messages() == []


def test_forged_calls_are_refused(shop: Client) -> None:
    answer = shop.post("/hooks/restock", "{}", content_type="application/json")
    assert answer.status_code == 401
