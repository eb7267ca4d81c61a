"""``qstash_emulator.testing``: the in-process testing API is documented, and the plugin
uses nothing else of the package."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import qstash_emulator
from qstash_emulator import testing

ROOT = Path(__file__).parent.parent


def _section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("### The in-process testing API")
    return readme[start : readme.index("\n## ", start)]


def test_every_name_is_documented() -> None:
    documented = set(re.findall(r"`(\w+)`", _section()))
    assert sorted(set(testing.__all__) - documented) == []
    for name in testing.__all__:
        assert getattr(testing, name) is not None


def test_every_in_process_member_of_the_emulator_is_documented() -> None:
    """The members the Python API table does not list are in this section's table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(\w+)", readme[readme.index("## The Python API") :]))
    public = {name for name, _ in inspect.getmembers(testing.Emulator) if not name.startswith("_")}
    assert sorted(public - documented) == []


def test_the_plugin_uses_the_testing_api_alone() -> None:
    """conftest_plugin imports ``qstash_emulator``, ``qstash_emulator.testing`` and (for
    contracts) ``qstash_emulator.contracts`` only, and never reaches into ``Emulator.runtime``."""
    found = []
    for path in sorted((ROOT / "conftest_plugin").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "qstash_emulator"
            ):
                public = ("qstash_emulator", "qstash_emulator.testing", "qstash_emulator.contracts")
                if node.module not in public:
                    found.append(f"{path.name}:{node.lineno}: from {node.module}")
                elif node.module == "qstash_emulator":
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    found += [f"{path.name}:{node.lineno}: {p}" for p in private]
            elif isinstance(node, ast.Attribute) and node.attr == "runtime":
                found.append(f"{path.name}:{node.lineno}: .runtime")
    assert found == [], "the plugin reaches past the testing API:\n" + "\n".join(found)


def test_the_package_exports_the_emulator_the_testing_api_does() -> None:
    assert testing.Emulator is qstash_emulator.Emulator
