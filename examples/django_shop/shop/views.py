"""An order publishes a restock job; QStash delivers it, signed, to the restock hook."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from qstash.errors import SignatureError

from .jobs import client, receiver

restocked: list[dict[str, object]] = []


@csrf_exempt
@require_POST
def order(request: HttpRequest) -> JsonResponse:
    item = json.loads(request.body)
    res = client.message.publish_json(
        url=f"{settings.PUBLIC_URL}/hooks/restock", body=item, retries=2
    )
    return JsonResponse({"messageId": res.message_id}, status=202)  # type: ignore[union-attr]


@csrf_exempt
@require_POST
def restock(request: HttpRequest) -> HttpResponse:
    try:
        receiver.verify(
            signature=request.headers.get("Upstash-Signature", ""),
            body=request.body.decode(),
            url=settings.PUBLIC_URL + request.path,
        )
    except SignatureError as exc:
        return HttpResponse(f"bad signature: {exc}", status=401)
    restocked.append(json.loads(request.body))
    return HttpResponse(status=204)
