"""Where this installation's documentation is, for messages that send a reader to it.

A wheel carries README.md and docs/ inside the package (pyproject's force-include), so a pip
user has them too; a checkout, or an editable install of one, has them at its root.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["docs_path"]

_PACKAGE = Path(__file__).parent.parent


def docs_path(page: str = "README.md") -> Path:
    """This installation's copy of a documentation page: ``README.md``, ``docs/ci.md`` ..."""
    installed = _PACKAGE / page
    checkout = _PACKAGE.parent / page
    if not installed.is_file() and (_PACKAGE.parent / "pyproject.toml").is_file():
        return checkout
    return installed
