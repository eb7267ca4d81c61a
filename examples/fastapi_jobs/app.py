"""Orders are accepted over HTTP and processed later by a QStash job; a report runs nightly.

Configuration comes from the environment at request time, as twelve-factor apps do, so the
``qstash`` test fixture (or the dev server's ``.env`` block) points it at the emulator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel
from qstash import QStash, Receiver
from qstash.errors import SignatureError

PUBLIC_URL = "https://jobs.example.com"  # where QStash reaches this service in production

app = FastAPI()
processed: dict[str, dict[str, object]] = {}
reports: list[int] = []


class Order(BaseModel):
    order_id: str
    amount: int


def qstash_client() -> Iterator[QStash]:
    client = QStash(os.environ["QSTASH_TOKEN"])  # the SDK reads QSTASH_URL itself
    try:
        yield client
    finally:
        client.http._client.close()  # the SDK has no close() of its own


async def verified_body(request: Request) -> bytes:
    """The raw body, once ``Upstash-Signature`` proves QStash sent it to our public URL."""
    body = await request.body()
    receiver = Receiver(
        os.environ["QSTASH_CURRENT_SIGNING_KEY"], os.environ["QSTASH_NEXT_SIGNING_KEY"]
    )
    try:
        receiver.verify(
            signature=request.headers.get("upstash-signature", ""),
            body=body.decode(),
            url=PUBLIC_URL + request.url.path,
        )
    except SignatureError as exc:
        raise HTTPException(401, f"bad signature: {exc}") from exc
    return body


Client = Annotated[QStash, Depends(qstash_client)]
VerifiedBody = Annotated[bytes, Depends(verified_body)]


@app.post("/orders", status_code=202)
def create_order(order: Order, client: Client) -> dict[str, str]:
    res = client.message.publish_json(
        url=f"{PUBLIC_URL}/jobs/process", body=order.model_dump(), retries=3
    )
    return {"messageId": res.message_id}  # type: ignore[union-attr]


@app.post("/jobs/process")
def process(body: VerifiedBody) -> Response:
    order = Order.model_validate_json(body)
    if order.amount <= 0:
        # Retrying cannot fix bad input: tell QStash to dead-letter it now.
        return Response("amount must be positive", 489, {"Upstash-NonRetryable-Error": "true"})
    processed[order.order_id] = order.model_dump()
    return Response(status_code=204)


@app.post("/schedules/nightly-report", status_code=201)
def schedule_report(client: Client) -> dict[str, str]:
    schedule_id = client.schedule.create(
        destination=f"{PUBLIC_URL}/jobs/report", cron="0 2 * * *", schedule_id="nightly-report"
    )
    return {"scheduleId": schedule_id}


@app.post("/jobs/report")
def report(body: VerifiedBody) -> Response:
    reports.append(len(processed))
    return Response(status_code=204)
