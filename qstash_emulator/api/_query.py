"""Query-string values: multi-value filters and bounded integers, each a 400 naming the field."""

from __future__ import annotations

from starlette.requests import Request

from .._errors import BadRequest

__all__ = ["int_param", "multi"]


def multi(request: Request, *names: str) -> list[str]:
    """A multi-value query filter: repeated (``a=1&a=2``) or comma-separated (``a=1,2``)."""
    values: list[str] = []
    for name in names:
        for raw in request.query_params.getlist(name):
            values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"invalid {name}: {raw!r} is not an integer") from exc
    if not low <= value <= high:
        raise BadRequest(f"invalid {name}: {value} is out of range [{low}, {high}]")
    return value
