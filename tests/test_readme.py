"""The README's "Testing your app" examples pass as written, run by pytest with the plugin."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).parent.parent / "README.md"


def _blocks() -> list[str]:
    body = README.read_text().split("## Testing your app\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_section_has_examples() -> None:
    blocks = _blocks()
    assert len(blocks) >= 2
    assert len(blocks[0].strip().splitlines()) <= 20  # the first one stays short


def test_readme_examples_pass(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _blocks()
    for number, block in enumerate(blocks):
        pytester.makepyfile(**{f"test_readme_{number}": block})
    tests = sum(len(re.findall(r"^(?:async )?def test_", b, flags=re.M)) for b in blocks)
    # A separate process, as a user runs them: the SDK's clients (it has no close()) are
    # garbage-collected there, not in this session, which treats warnings as errors.
    # Only our plugin, and anyio's for the async example: unrelated installed plugins would
    # just slow the start.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess(
        "-q", "-p", "no:cacheprovider", "-p", "conftest_plugin.plugin", "-p", "anyio"
    )
    result.assert_outcomes(passed=tests)


def test_readme_examples_are_formatted() -> None:
    for block in _blocks():
        done = subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--line-length", "100", "--diff", "-"],
            input=block,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout
