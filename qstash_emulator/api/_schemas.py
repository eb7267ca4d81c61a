"""JSON schema fragments that more than one operation declares (``_declare.Operation``)."""

from __future__ import annotations

from typing import Any

from ._filters import BODY_FILTER_NAMES

__all__ = ["BATCH", "INT", "PUBLISHED", "STR", "STRINGS", "ids_or_filters", "string_map"]

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
STRINGS: dict[str, Any] = {"type": "array", "items": STR}


def string_map(values: dict[str, Any] = STR) -> dict[str, Any]:
    """An object of any keys, each holding ``values`` (headers)."""
    return {"type": "object", "additionalProperties": values}


_MESSAGE_ID = {"type": "object", "properties": {"messageId": STR, "url": STR}}
PUBLISHED: dict[str, Any] = {"oneOf": [_MESSAGE_ID, {"type": "array", "items": _MESSAGE_ID}]}
BATCH: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["destination"],
        "properties": {
            "destination": STR,
            "queue": {"type": ["string", "null"]},
            "body": STR,
            "headers": string_map(),
        },
    },
}


def ids_or_filters(ids: str) -> dict[str, Any]:
    """A bulk call's JSON body: ``ids``, or the filters ``model.filters.filter_from_body`` reads."""
    filters = dict.fromkeys(BODY_FILTER_NAMES, STR)
    return {"type": "object", "properties": {ids: STRINGS, **filters}}
