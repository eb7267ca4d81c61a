"""The consumer: billing's webhook for the shop's orders. It checks the signature against
the URL it was called at, and refuses (400, naming the field) a body it cannot bill."""

from __future__ import annotations

import os

from flask import Flask, request
from qstash import Receiver
from qstash.errors import SignatureError

REQUIRED = ("order_id", "total", "currency")

app = Flask(__name__)
billed: list[dict[str, object]] = []


@app.post("/hooks/order-placed")
def order_placed() -> tuple[dict[str, str], int]:
    receiver = Receiver(
        os.environ["QSTASH_CURRENT_SIGNING_KEY"], os.environ["QSTASH_NEXT_SIGNING_KEY"]
    )
    try:
        receiver.verify(
            signature=request.headers.get("Upstash-Signature", ""),
            body=request.get_data(as_text=True),
            url=request.base_url,
        )
    except SignatureError as exc:
        return {"error": f"signature: {exc}"}, 401
    order = request.get_json()
    missing = [name for name in REQUIRED if name not in order]
    if missing:
        return {"error": f"missing field {', '.join(missing)}"}, 400
    billed.append(order)
    return {"billed": str(order["order_id"])}, 200
