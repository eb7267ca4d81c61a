"""The Flask app under test: the job is delivered through the WSGI mount, no socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from flask_jobs import app as module
from flask_jobs.app import PUBLIC_URL, app, sent
from qstash_emulator.pytest import QStashFixture


@pytest.fixture
def client(qstash: QStashFixture) -> Iterator[FlaskClient]:
    sent.clear()
    module.outbox_down = False
    qstash.mount(PUBLIC_URL, app)  # a WSGI app: detected and wrapped for delivery
    yield app.test_client()


def test_signup_sends_the_welcome_mail(client: FlaskClient, qstash: QStashFixture) -> None:
    answer = client.post("/signup", json={"email": "ada@example.com"})
    assert answer.status_code == 202

    delivery = qstash.wait_for(path="/jobs/welcome")

    assert delivery.message_id == answer.get_json()["messageId"]
    assert delivery.check_signature(url=f"{PUBLIC_URL}/jobs/welcome").ok
    assert sent == ["ada@example.com"]


def test_mail_outage_is_retried(client: FlaskClient, qstash: QStashFixture) -> None:
    module.outbox_down = True
    client.post("/signup", json={"email": "bob@example.com"})
    first = qstash.wait_for(path="/jobs/welcome")
    assert (first.status, first.outcome, first.next_delay_ms) == (503, "retry", 12_182)

    module.outbox_down = False
    qstash.run_until_idle()

    qstash.assert_delivered(path="/jobs/welcome", retried=1)
    assert sent == ["bob@example.com"]


def test_a_long_outage_ends_in_the_dead_letter_queue(
    client: FlaskClient, qstash: QStashFixture
) -> None:
    module.outbox_down = True
    client.post("/signup", json={"email": "eve@example.com"})

    qstash.run_until_idle()

    assert [d.status for d in qstash.deliveries] == [503, 503, 503]  # 1 try + 2 retries
    entry = qstash.assert_dead_lettered(path="/jobs/welcome")
    assert entry["responseBody"] == "mail provider unavailable"
    assert sent == []


def test_unsigned_calls_are_refused(client: FlaskClient) -> None:
    assert client.post("/jobs/welcome", json={"email": "x@example.com"}).status_code == 401
