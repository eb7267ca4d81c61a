"""Each route is built from the operation declared on its handler (``api._declare``): the
route list, the query names it accepts and the OpenAPI document all come from there."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection
from starlette.routing import Match

from qstash_emulator import Emulator
from qstash_emulator.api._declare import OperationRoute

from .helpers import api, api_routes

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_ROUTES = api_routes()


def _operation_routes() -> list[OperationRoute]:
    routes = [r for r in _ROUTES if isinstance(r, OperationRoute)]
    assert len(routes) == len(_ROUTES)
    return routes


def test_every_api_route_is_built_from_its_declared_operation() -> None:
    """So the document describes every route with what it takes and answers."""
    for route in _operation_routes():
        op = route.operation
        assert route.path == op.path
        assert route.methods == {op.method} | ({"HEAD"} if op.method == "GET" else set())


def test_no_route_is_hidden_by_an_earlier_one() -> None:
    """Routes match in declaration order: /v2/schedules/x/pause must reach its own route, not
    an earlier one whose {destination:path} would take it too."""
    hidden = []
    for route in _operation_routes():
        op = route.operation
        path = _PARAM.sub(lambda m: f"some-{m.group(1)}", op.path)
        scope = {"type": "http", "path": path, "method": op.method}
        first = next(r for r in _ROUTES if r.matches(scope)[0] == Match.FULL)
        if first is not route:
            hidden.append((op.method, op.path, getattr(first, "path", "")))
    assert hidden == []


# What a query name gets when it is tried alone: a value that takes the handler down the
# branch that name opens; any other name gets "x".
_BRANCHES = {
    "source": "workflow",
    "groupBy": "workflowRunId",
    "cancel": "false",
    "count": "1",
    "messageId": "msg_x",
}


class _Recording(QueryParams):
    """Query parameters that note each name a handler asks for, present or not."""

    reads: dict[tuple[Any, str], set[str]] = {}
    router: Any = None  # the served app's, whose routes say which endpoint is which

    def __init__(self, scope: Any) -> None:
        super().__init__(scope["query_string"])
        key = (scope.get("endpoint"), scope["method"])
        self._asked = self.reads.setdefault(key, set())
        _Recording.router = scope.get("router")

    def get(self, key: Any, default: Any = None) -> Any:
        self._asked.add(key)
        return super().get(key, default)

    def getlist(self, key: Any) -> list[str]:
        self._asked.add(key)
        return super().getlist(key)

    def __getitem__(self, key: Any) -> str:
        self._asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: Any) -> bool:
        self._asked.add(key)
        return super().__contains__(key)


_Reads = dict[tuple[str, str], set[str]]


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Reads]:
    """The names each operation's handler asked for, by (method, path template)."""
    _Recording.reads = {}
    monkeypatch.setattr(HTTPConnection, "query_params", property(lambda c: _Recording(c.scope)))
    with Emulator() as emu:
        with api(emu) as http:
            for route in _operation_routes():
                op = route.operation
                if op.accepted_query is None:
                    continue  # a publish's query is its destination's, a webhook's its caller's
                path = _PARAM.sub(lambda m: "1-0" if m.group(1) == "dlqId" else "x", op.path)
                tries = [{}, *({name: _BRANCHES.get(name, "x")} for name in op.query)]
                for params in tries:
                    http.request(op.method, path, params=params, content=b"")
    served = {
        (r.endpoint, r.operation.method): (r.operation.method, r.operation.path)
        for r in _Recording.router.routes
        if isinstance(r, OperationRoute)
    }
    reads: _Reads = {}
    for (endpoint, method), names in _Recording.reads.items():
        key = served.get((endpoint, "GET" if method == "HEAD" else method))
        if key is not None:
            reads.setdefault(key, set()).update(names)
    yield reads


def test_no_handler_reads_a_query_name_its_route_does_not_accept(
    recording: _Reads,
) -> None:
    """Each documented operation is called with no query and with each name it declares; a
    name a handler (or a parser it calls) asks for must be one the route declares, or a
    client sending it gets a 400 for a name the code reads."""
    undeclared = []
    for route in _operation_routes():
        op = route.operation
        if op.accepted_query is None:
            continue
        asked = recording.get((op.method, op.path), set())
        assert asked or not op.query, (op.method, op.path, "was never called")
        extra = asked - op.accepted_query
        if extra:
            undeclared.append((op.method, op.path, sorted(extra)))
    assert undeclared == []


def test_no_route_declares_a_query_name_its_handler_never_reads(
    recording: _Reads,
) -> None:
    """A name accepted but never read would be a filter silently ignored: a bulk delete that
    takes it would act on everything."""
    unread = []
    for route in _operation_routes():
        op = route.operation
        if op.accepted_query is None:
            continue
        asked = recording.get((op.method, op.path), set())
        missing = set(op.query) - asked
        if missing:
            unread.append((op.method, op.path, sorted(missing)))
    assert unread == []


def test_a_handler_takes_its_parts_by_name_and_a_missing_one_fails_the_build() -> None:
    """``route_of`` binds the parts a handler names once, when the app is built: a name the
    runtime does not hold is an error then, not a 500 on the first request; a part that is
    not keyword-only is refused when the route is declared."""
    from starlette.requests import Request
    from starlette.responses import Response

    from qstash_emulator.api._declare import Operations, route_of
    from qstash_emulator.server.config import Settings
    from qstash_emulator.server.runtime import Runtime

    api = Operations()

    @api.route("GET /x", "Takes what the runtime holds, and one thing it does not")
    async def handler(request: Request, *, messages: object, nothing: object) -> Response:
        raise AssertionError("never called")

    (op,) = api.declared
    assert op.needs == ("messages", "nothing")
    with pytest.raises(TypeError, match="handler takes 'nothing', which the runtime does not"):
        route_of(op, Runtime(Settings()))

    async def positional(request: Request, messages: object) -> Response:
        raise AssertionError("never called")

    with pytest.raises(TypeError, match="positional: messages must be keyword-only"):
        api.route("GET /y", "A part passed by position")(positional)


def test_a_read_only_tokens_write_is_refused_by_the_route_alone() -> None:
    """Authentication and the read-only check are ``route_of``'s, before any handler: a
    handler reads who called (``caller(request)``) and judges nothing of the token again."""
    import ast
    from pathlib import Path

    import qstash_emulator.api as package

    judged = []
    for path in sorted(Path(package.__path__[0]).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if node.func.id == "caller" and (len(node.args) > 1 or node.keywords):
                judged.append(f"{path.name}:{node.lineno}")
            elif node.func.id == "authenticate" and path.name != "_declare.py":
                write = node.args[1] if len(node.args) > 1 else None
                if not (isinstance(write, ast.Constant) and write.value is False):
                    judged.append(f"{path.name}:{node.lineno}")  # only who, never may it write
    assert judged == []
