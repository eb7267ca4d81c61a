"""The package's shape: imports flow one way (no cycles), so each module can be read alone;
states and kinds are types that mypy checks."""

from __future__ import annotations

import ast
import inspect
import textwrap
import typing
from collections.abc import Iterator
from pathlib import Path

from qstash_emulator.model.message import State

ROOT = Path(__file__).parent.parent
PACKAGES = ("qstash_emulator", "conftest_plugin")


def _modules() -> dict[str, Path]:
    """Every module of the packages by dotted name (a package by its ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The module that importing ``name`` loads last: itself, or its nearest package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The package modules ``name`` imports anywhere in its text: at the top, in a function
    (a lazy import is still a dependency) and under ``TYPE_CHECKING`` (so is a type)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (target := _known(alias.name, modules)) is not None:
                    yield target
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                # ``from . import _json`` names a module; ``from ._x import f`` a member of one.
                target = _known(f"{source}.{alias.name}", modules)
                if target is not None and target != _known(source, modules):
                    yield target
                elif (target := _known(source, modules)) is not None:
                    yield target


def _packages_entered(importer: str, target: str, modules: dict[str, Path]) -> Iterator[str]:
    """The packages whose ``__init__`` runs first when ``importer`` imports ``target``: those
    around ``target`` that ``importer`` is not inside (``qstash_emulator.api`` imports every
    route module, so a module outside it that reaches into it depends on all of them)."""
    parts = target.split(".")
    for end in range(1, len(parts)):
        package = ".".join(parts[:end])
        if package in modules and not (importer + ".").startswith(package + "."):
            yield package


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set(_imported(name, path, modules))
        for target in list(targets):
            targets.update(_packages_entered(name, target, modules))
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    # Top level, a lazy import in a function, and one under TYPE_CHECKING.
    assert "qstash_emulator.store.core" in graph["qstash_emulator.delivery.engine"]
    assert "qstash_emulator.store.memory" in graph["qstash_emulator.store.core"]
    assert "qstash_emulator.model.expressions" in graph["qstash_emulator.delivery.retry"]
    assert "conftest_plugin._server" in graph["conftest_plugin._time"]
    # Reaching into a package from outside runs its __init__ first; from inside it does not.
    assert "qstash_emulator.api" in graph["qstash_emulator.dashboard._routes"]
    assert "qstash_emulator.api" not in graph["qstash_emulator.api.dlq"]


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert cycles(graph) == [["a", "b", "c"], ["d", "e"]]


def test_no_import_cycles() -> None:
    graph = import_graph()
    loops = [
        ", ".join(group)
        + ":\n    "
        + "\n    ".join(f"{m} imports {', '.join(sorted(graph[m] & set(group)))}" for m in group)
        for group in cycles(graph)
    ]
    assert not loops, "modules in an import loop:\n" + "\n".join(loops)


def _states() -> list[tuple[type, str, set[str]]]:
    from conftest_plugin._deliveries import Delivery
    from conftest_plugin._options import Options
    from conftest_plugin._pending import PendingMessage
    from qstash_emulator.delivery.records import Attempt
    from qstash_emulator.delivery.retry import Decision
    from qstash_emulator.model.message import Message
    from qstash_emulator.server.config import Flag
    from qstash_emulator.services.faults import Fault
    from qstash_emulator.services.inspection import Waiting

    outcomes = {"delivered", "retry", "failed", "cancelled"}
    kinds = {"message", "callback", "failure_callback"}
    waiting = {"pending", "delayed", "retrying", "in_flight", "queued"}
    return [
        (Message, "state", {v for k, v in vars(State).items() if k.isupper()}),
        (Message, "kind", kinds),
        (Attempt, "kind", kinds),
        (Attempt, "outcome", outcomes),
        (Decision, "outcome", outcomes),
        (Fault, "kind", {"error", "daily", "burst", "drop"}),
        (Flag, "kind", {"str", "int", "seconds", "size", "bool", "names"}),
        (Waiting, "state", waiting),
        (PendingMessage, "state", waiting),
        (PendingMessage, "kind", kinds),
        (Options, "clock", {"virtual", "real"}),
        (Delivery.outcome.fget, "return", outcomes),  # type: ignore[attr-defined]
        (Delivery.kind.fget, "return", kinds),  # type: ignore[attr-defined]
    ]


def test_states_are_literal_types() -> None:
    """Outcomes, kinds and states are ``Literal`` types, so mypy refuses a misspelt one in a
    comparison or an assignment; each lists exactly the values the emulator uses."""
    wrong = []
    for owner, name, values in _states():
        hint = typing.get_type_hints(owner)[name]
        if typing.get_origin(hint) is not typing.Literal or set(typing.get_args(hint)) != values:
            wrong.append(f"{getattr(owner, '__qualname__', owner)}.{name}: {hint}")
    assert not wrong, "not the Literal type of their values:\n" + "\n".join(wrong)


def _store_layer(name: str) -> bool:
    """The modules that may talk to Redis: the ``store`` package, and the workflow runs'
    companion in their own package."""
    return name.startswith("qstash_emulator.store.") or name.endswith("._store")


def test_only_the_store_layer_talks_to_redis() -> None:
    """No ``store.redis`` (or any ``.redis``) and no ``import redis`` outside the store layer:
    services call the store's methods, and the key layout stays in ``store.keyspace``."""
    found = []
    for name, path in _modules().items():
        if _store_layer(name):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "redis":
                found.append(f"{name}:{node.lineno}: .redis")
            elif isinstance(node, ast.Import) and any(
                a.name.split(".")[0] == "redis" for a in node.names
            ):
                found.append(f"{name}:{node.lineno}: import redis")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "redis":
                found.append(f"{name}:{node.lineno}: from redis")
    assert not found, "Redis outside the store layer:\n" + "\n".join(found)


def test_the_store_layer_is_what_its_names_say() -> None:
    layer = sorted(n for n in _modules() if _store_layer(n))
    assert "qstash_emulator.store.core" in layer
    assert "qstash_emulator.store.queues" in layer
    assert "qstash_emulator.workflows._store" in layer
    assert "qstash_emulator.services.queues" not in layer


def _poked(source: str, cls: str) -> list[str]:
    """The collaborators ``cls.__init__`` sets on other objects (``other.x = ...``,
    ``other.x.append(...)``) instead of passing them when it builds those objects."""
    init = next(
        f
        for c in ast.walk(ast.parse(source))
        if isinstance(c, ast.ClassDef) and c.name == cls
        for f in c.body
        if isinstance(f, ast.FunctionDef) and f.name == "__init__"
    )
    found = []
    for node in ast.walk(init):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("append", "extend", "insert") and isinstance(
                node.func.value, ast.Attribute
            ):
                found.append(ast.unparse(node.func))
        for target in targets:
            if isinstance(target, ast.Attribute) and not (
                isinstance(target.value, ast.Name) and target.value.id == "self"
            ):
                found.append(ast.unparse(target))
    return found


def test_the_runtime_passes_collaborators_when_it_builds_the_parts() -> None:
    """The runtime gives each part what it needs in its constructor, or in the one ``attach``
    call of the engine and the publisher: it sets nothing on a part after building it."""
    source = (ROOT / "qstash_emulator" / "server" / "runtime.py").read_text(encoding="utf-8")
    assert _poked(source, "Runtime") == []
    assert _poked(
        "class R:\n def __init__(self):\n  e.gates = []\n  self.p.checks.append(1)", "R"
    ) == [
        "e.gates",
        "self.p.checks.append",
    ]


def _handler_modules() -> dict[str, Path]:
    """The API modules whose code runs per request: the handlers and the helpers they call
    (``api/__init__`` and ``api/_declare`` build the routes and bind the parts: not these)."""
    return {
        name: path
        for name, path in _modules().items()
        if name.startswith("qstash_emulator.api.") and name != "qstash_emulator.api._declare"
    }


def _reaches_the_runtime(source: str) -> list[str]:
    """Where ``source`` gets at the runtime: importing it, naming ``Runtime``, reading
    ``app.state`` (where a locator would keep it) or calling a ``runtime(...)`` helper."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("server.runtime"):
            found.append(f"{node.lineno}: imports {node.module}")
        elif isinstance(node, ast.Name) and node.id in ("Runtime", "runtime"):
            found.append(f"{node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in ("state", "runtime"):
            if isinstance(node.value, ast.Attribute) and node.value.attr == "app":
                found.append(f"{node.lineno}: {ast.unparse(node)}")
            elif node.attr == "runtime":
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_handler_reaches_the_runtime() -> None:
    """A handler names the parts it uses in its signature (bound once by ``route_of``), so
    what it depends on is all there: no module it runs reaches the runtime, a locator."""
    found = [
        f"{name}:{where}"
        for name, path in sorted(_handler_modules().items())
        for where in _reaches_the_runtime(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "handler code reaching the runtime:\n" + "\n".join(found)
    assert _reaches_the_runtime(
        "from ..server.runtime import Runtime\n"
        "def f(request):\n rt = runtime(request)\n request.app.state.runtime.x\n"
    ) == [
        "1: imports server.runtime",
        "3: runtime",
        "4: request.app.state.runtime",
        "4: request.app.state",
    ]


def test_each_handler_takes_the_parts_it_uses_by_their_runtime_name_and_type() -> None:
    """The keyword-only parameters of a handler are the runtime's parts of those names and
    annotated types, and the handler uses each: its signature says exactly what it needs."""
    from qstash_emulator.api import all_operations
    from qstash_emulator.server.config import Settings
    from qstash_emulator.server.runtime import Runtime

    runtime = Runtime(Settings())
    wrong = []
    handlers = {op.handler: op.needs for op in all_operations()}
    assert sum(1 for needs in handlers.values() if needs) > len(handlers) // 2
    for handler, needs in handlers.items():
        where = f"{handler.__module__}.{handler.__qualname__}"
        hints = typing.get_type_hints(handler)
        tree = ast.parse(textwrap.dedent(inspect.getsource(handler)))
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        for name in needs:
            part = getattr(runtime, name, None)
            kind = typing.get_origin(hints[name]) or hints[name]
            if part is None or part is runtime or not isinstance(part, kind):
                wrong.append(f"{where}: {name}: {hints[name]} is not the runtime's {name}")
            if name not in used:
                wrong.append(f"{where}: takes {name} and never uses it")
    assert wrong == []


def _classes(package: str) -> dict[str, list[str]]:
    """Every class ``package`` defines at any depth, by name: the modules that define it."""
    found: dict[str, list[str]] = {}
    for name, path in sorted(_modules().items()):
        if name.split(".")[0] != package:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append(name)
    return found


def test_duplicate_class_names_are_found() -> None:
    assert _classes("qstash_emulator")["PublishOptions"] == ["qstash_emulator.model.options"]
    assert len(_classes("conftest_plugin")["Server"]) == 1


def test_no_two_classes_share_a_name() -> None:
    """One name per concept: a class's name says which thing it is wherever it is read."""
    classes = _classes("qstash_emulator")
    assert {name: where for name, where in classes.items() if len(where) > 1} == {}
