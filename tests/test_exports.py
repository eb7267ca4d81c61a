"""The public API is deliberate: ``__all__`` is sorted and is exactly what the root exports."""

from __future__ import annotations

import inspect

import qstash_emulator


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(qstash_emulator) if not name.startswith("_")}
    exported = set(qstash_emulator.__all__) - {"__version__"}
    assert qstash_emulator.__all__ == sorted(qstash_emulator.__all__, key=str.casefold) or (
        qstash_emulator.__all__ == sorted(qstash_emulator.__all__)
    )
    # Its own subpackages and modules import as attributes (a new package edits nothing here).
    modules = {
        name
        for name in public
        if inspect.ismodule(module := getattr(qstash_emulator, name))
        and module.__name__ == f"qstash_emulator.{name}"
    }
    assert {"api", "server", "store"} <= modules
    assert sorted(public - exported - modules) == []
    assert exported <= public


def test_the_plugin_names_import_from_the_package() -> None:
    """Users import ``qstash_emulator.pytest``; ``conftest_plugin`` is the plugin's internals."""
    import conftest_plugin
    from conftest_plugin._endpoints import reply
    from conftest_plugin._fixture import QStashFixture
    from qstash_emulator import pytest as public

    assert public.QStashFixture is QStashFixture and public.reply is reply
    assert sorted(dir(public)) == sorted(public.__all__)
    for name in public.__all__:
        assert getattr(public, name).__name__ == name
    assert not hasattr(conftest_plugin, "QStashFixture")


def test_nothing_documented_imports_from_the_plugin_internals() -> None:
    from pathlib import Path

    root = Path(__file__).parent.parent
    pages = [root / "README.md", *root.glob("docs/*.md"), *root.glob("examples/**/*.py")]
    found = [p.name for p in pages if "from conftest_plugin import" in p.read_text()]
    assert found == []
