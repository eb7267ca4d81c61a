"""``Upstash-Retry-Delay`` expressions, evaluated without ``eval``.

The grammar is arithmetic over numbers and the variable ``retried`` with the functions
QStash documents. Expressions are parsed once, checked node by node, and evaluated by
walking the tree, so nothing a user sends can run code.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from .._errors import BadRequest

__all__ = ["RetryDelayExpression"]

_MAX_LENGTH = 1_000
# The longest delay any plan accepts (100 years): ``now + delay`` stays a 64-bit integer,
# which the store and the JSON encoder need; ``1e300`` would otherwise wedge the message.
_MAX_DELAY_MS = 100 * 365 * 86_400_000
_MAX_DEPTH = 32
_FUNCTIONS: dict[str, tuple[int, Callable[..., float]]] = {
    "pow": (2, math.pow),
    "exp": (1, math.exp),
    "sqrt": (1, math.sqrt),
    "abs": (1, abs),
    "floor": (1, math.floor),
    "ceil": (1, math.ceil),
    "round": (1, round),
    "min": (2, min),
    "max": (2, max),
}
_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


class RetryDelayExpression:
    """A checked retry-delay expression; ``evaluate(retried)`` gives milliseconds."""

    def __init__(self, source: str, field: str = "Upstash-Retry-Delay") -> None:
        self.source = source
        self.field = field
        if len(source) > _MAX_LENGTH:
            raise BadRequest(f"invalid {field}: expression longer than {_MAX_LENGTH} characters")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except (SyntaxError, ValueError) as exc:
            raise BadRequest(f"invalid {field}: {source!r} is not an expression") from exc
        self._check(tree.body, 0)
        self._tree = tree.body
        # Reject what can never evaluate (1/0, sqrt(-1)) at publish time, not at retry time.
        self.evaluate(0)

    def _check(self, node: ast.AST, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise BadRequest(f"invalid {self.field}: expression nested too deeply")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise BadRequest(f"invalid {self.field}: only numbers are allowed")
        elif isinstance(node, ast.Name):
            if node.id != "retried":
                raise BadRequest(
                    f"invalid {self.field}: unknown variable {node.id!r}, only 'retried'"
                )
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            self._check(node.left, depth + 1)
            self._check(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            self._check(node.operand, depth + 1)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            spec = _FUNCTIONS.get(node.func.id)
            if spec is None:
                raise BadRequest(f"invalid {self.field}: unknown function {node.func.id!r}")
            if node.keywords or len(node.args) != spec[0]:
                raise BadRequest(
                    f"invalid {self.field}: {node.func.id}() takes {spec[0]} argument(s)"
                )
            for arg in node.args:
                self._check(arg, depth + 1)
        else:
            raise BadRequest(f"invalid {self.field}: unsupported syntax in {self.source!r}")

    def evaluate(self, retried: int) -> int:
        """The delay in ms before retry number ``retried + 1``, never negative nor endless."""
        try:
            value = float(self._eval(self._tree, float(retried)))
        except (ZeroDivisionError, OverflowError, ValueError) as exc:
            raise BadRequest(f"invalid {self.field}: {self.source!r} fails: {exc}") from exc
        if math.isnan(value) or math.isinf(value):
            raise BadRequest(f"invalid {self.field}: {self.source!r} is not a finite number")
        return min(_MAX_DELAY_MS, max(0, int(value)))

    def _eval(self, node: ast.expr, retried: float) -> float:
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, (int, float))
            return float(node.value)
        if isinstance(node, ast.Name):
            return retried
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](
                self._eval(node.left, retried), self._eval(node.right, retried)
            )
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, retried))
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        args = [self._eval(arg, retried) for arg in node.args]
        return float(_FUNCTIONS[node.func.id][1](*args))
