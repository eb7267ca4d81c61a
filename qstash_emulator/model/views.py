"""The JSON shapes clients see: messages, log rows, DLQ entries and callback payloads."""

from __future__ import annotations

import hashlib
from typing import Any

from .._json import b64, text_or_base64
from .message import LogState, Message
from .options import option_view

__all__ = ["callback_payload", "dlq_view", "log_row", "message_view"]


def redacted(value: bytes | str) -> str:
    data = value.encode() if isinstance(value, str) else value
    return "REDACTED:" + hashlib.sha256(data).hexdigest()


def header_view(header: dict[str, list[str]], redact: list[str]) -> dict[str, list[str]]:
    if "header" in redact:
        return {name: [redacted(v) for v in values] for name, values in header.items()}
    names = {r[7:-1] for r in redact if r.startswith("header[")}
    if not names:
        return header
    return {
        name: [redacted(v) for v in values] if name in names else values
        for name, values in header.items()
    }


def _body_view(msg: Message, text_key: str, b64_key: str) -> dict[str, Any]:
    if msg.body_dropped:
        return {text_key: "", "bodyDropped": True}
    if "body" in msg.options.redact and msg.body:
        return {text_key: redacted(msg.body)}
    return text_or_base64(msg.body, text_key, b64_key)


def _optional(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (
        ("topicName", msg.topic_name),
        ("endpointName", msg.endpoint_name),
        ("queueName", msg.queue_name),
        ("scheduleId", msg.schedule_id),
    ):
        if value:
            out[key] = value
    out.update(option_view(msg.options, "message"))
    return out


def message_view(msg: Message) -> dict[str, Any]:
    """``GET /v2/messages/{id}``: the keys the Python SDK indexes are always there.

    The rules: docs/behaviour.md#messages.
    """
    view: dict[str, Any] = {
        "messageId": msg.id,
        "url": msg.url,
        "method": msg.options.method,
        "header": header_view(msg.options.header, msg.options.redact),
        "maxRetries": msg.max_retries,
        "notBefore": msg.not_before,
        "createdAt": msg.created_at,
        "callerIP": msg.caller_ip,
        "callerIp": msg.caller_ip,
    }
    view.update(_body_view(msg, "body", "bodyBase64"))
    view.update(_optional(msg))
    return view


def dlq_view(msg: Message, dlq_id: str, response: dict[str, Any]) -> dict[str, Any]:
    """A DLQ entry (docs/behaviour.md#dead-letters): the message plus the last response."""
    view = message_view(msg)
    view["dlqId"] = dlq_id
    view["responseStatus"] = response.get("status", 0)
    view["responseHeader"] = response.get("header", {})
    view["responseHeaders"] = view["responseHeader"]
    if response.get("bodyDropped"):  # over the body budget (docs/behaviour.md#memory)
        view["responseBodyDropped"] = True
    else:
        view.update(text_or_base64(response.get("body", b""), "responseBody", "responseBodyBase64"))
    if response.get("error"):
        view["error"] = response["error"]
    return view


def log_row(msg: Message, state: LogState, time_ms: int, **extra: Any) -> dict[str, Any]:
    """One log entry, with both spellings where SDKs and docs differ (docs/behaviour.md#logs)."""
    row: dict[str, Any] = {
        "time": time_ms,
        "messageId": msg.id,
        "state": state,
        "url": msg.url,
        "method": msg.options.method,
        "header": header_view(msg.options.header, msg.options.redact),
        "maxRetries": msg.max_retries,
        "createdAt": msg.created_at,
        "notBefore": msg.not_before,
        "callerIP": msg.caller_ip,
    }
    if msg.body:
        row["body"] = redacted(msg.body) if "body" in msg.options.redact else b64(msg.body)
    row.update(_optional(msg))
    if msg.options.retry_delay:
        row["retryDelayExpr"] = msg.options.retry_delay
    if "callbackHeader" in row:
        row["callbackHeaders"] = row["callbackHeader"]
    if "failureCallbackHeader" in row:
        row["failureCallbackHeaders"] = row["failureCallbackHeader"]
    for key, value in extra.items():
        if value is not None:
            row[key] = value
    if "responseHeader" in row:
        row["responseHeaders"] = row["responseHeader"]
    return row


def callback_payload(msg: Message, response: dict[str, Any], dlq_id: str | None) -> dict[str, Any]:
    """The JSON body a callback or failure callback receives (docs/behaviour.md#callbacks)."""
    payload: dict[str, Any] = {
        "status": response.get("status", 0),
        "header": response.get("header", {}),
        "body": b64(response.get("body", b"")),
        "retried": msg.retried,
        "maxRetries": msg.max_retries,
        "sourceMessageId": msg.id,
        "url": msg.url,
        "method": msg.options.method,
        "sourceHeader": msg.options.header,
        "sourceBody": b64(msg.body),
        "notBefore": msg.not_before,
        "createdAt": msg.created_at,
        "callerIP": msg.caller_ip,
    }
    for key, value in (
        ("topicName", msg.topic_name),
        ("endpointName", msg.endpoint_name),
        ("scheduleId", msg.schedule_id),
        ("queueName", msg.queue_name),
        ("dlqId", dlq_id),
    ):
        if value:
            payload[key] = value
    if response.get("error"):
        payload["error"] = response["error"]
    return payload
