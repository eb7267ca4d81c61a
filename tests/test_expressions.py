from __future__ import annotations

import pytest

from qstash_emulator._errors import BadRequest
from qstash_emulator.model.expressions import RetryDelayExpression


@pytest.mark.parametrize(
    ("source", "retried", "ms"),
    [
        ("1000", 3, 1000),
        ("1000 * (1 + retried)", 2, 3000),
        ("pow(2, retried) * 1000", 3, 8000),
        ("max(1000, pow(2, retried) * 100)", 1, 1000),
        ("min(5000, exp(retried) * 10)", 2, 73),
        ("sqrt(16) + abs(-2) + floor(1.7) + ceil(1.2) + round(2.5)", 0, 11),
        ("-5", 0, 0),
        ("10 % 4 - 1 / 2", 0, 1),
    ],
)
def test_evaluates_documented_functions(source: str, retried: int, ms: int) -> None:
    assert RetryDelayExpression(source).evaluate(retried) == ms


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('id')",
        "().__class__",
        "retried.real",
        "open('x')",
        "lambda: 1",
        "[1]",
        "'a'",
        "True",
        "x + 1",
        "pow(2)",
        "1000 / 0",
        "sqrt(-1)",
        "pow(10, 400)",
        "1 if 1 else 2",
        "-" * 40 + "1",
        "1" * 1001,
        "2 ** 8",
        "max(a=1, b=2)",
    ],
)
def test_rejects_anything_else_naming_the_header(source: str) -> None:
    with pytest.raises(BadRequest, match="Upstash-Retry-Delay"):
        RetryDelayExpression(source)


def test_failure_at_a_later_retry_is_reported() -> None:
    expr = RetryDelayExpression("1000 / (retried - 2)")
    assert expr.evaluate(0) == 0
    with pytest.raises(BadRequest, match="fails"):
        expr.evaluate(2)
