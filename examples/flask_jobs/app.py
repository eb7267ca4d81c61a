"""Sign-ups queue a welcome e-mail job; QStash calls back the (signed) job endpoint.

Settings are read from the environment on each request, so the ``qstash`` test fixture, or
the dev server's ``.env`` block, points the app at the emulator.
"""

from __future__ import annotations

import os

from flask import Flask, abort, request
from qstash import QStash, Receiver
from qstash.errors import SignatureError

PUBLIC_URL = "https://mail.example.com"

app = Flask(__name__)
sent: list[str] = []
outbox_down = False  # flipped by tests to simulate the mail provider failing


def _client() -> QStash:
    return QStash(os.environ["QSTASH_TOKEN"])


@app.post("/signup")
def signup() -> tuple[dict[str, str], int]:
    email = request.get_json()["email"]
    client = _client()
    try:
        res = client.message.publish_json(
            url=f"{PUBLIC_URL}/jobs/welcome", body={"email": email}, retries=2
        )
    finally:
        client.http._client.close()  # the SDK has no close() of its own
    return {"messageId": res.message_id}, 202  # type: ignore[union-attr]


@app.post("/jobs/welcome")
def welcome() -> tuple[str, int]:
    body = request.get_data(as_text=True)
    receiver = Receiver(
        os.environ["QSTASH_CURRENT_SIGNING_KEY"], os.environ["QSTASH_NEXT_SIGNING_KEY"]
    )
    try:
        receiver.verify(
            signature=request.headers.get("Upstash-Signature", ""),
            body=body,
            url=PUBLIC_URL + request.path,
        )
    except SignatureError:
        abort(401)
    if outbox_down:
        return "mail provider unavailable", 503
    sent.append(request.get_json()["email"])
    return "", 204
