"""The repository stands alone: it cites its own docs/ pages, and every cited section exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"

# Not part of the project: environments, caches, installed packages, build output.
_SKIP = {
    ".git",
    ".venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "dist",
    "build",
}

# Notes kept outside the repository, and the section sign their citations use. Escaped, so
# that this file does not match itself.
_OUTSIDE = re.compile(
    r"qstash-api\.md|decisions\.md|decisions ?#\d|anchors\.md|shared[/]reference|\u00a7"
)
_SECTION_LINK = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")
_IN_PAGE_LINK = re.compile(r"\]\(#([\w-]+)\)")
# A link to a file of the repository, with an optional section after a "#".
_RELATIVE_LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)#\s]+)(?:#([\w-]+))?\)")


def _files() -> Iterator[tuple[Path, str]]:
    stack = [ROOT]
    while stack:
        for path in sorted(stack.pop().iterdir()):
            if path.name in _SKIP:
                continue
            if path.is_dir():
                stack.append(path)
                continue
            try:
                yield path, path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # binary files cite nothing


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings."""
    headings = re.findall(r"^#{1,6} (.+)$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_nothing_cites_notes_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path, text in _files()
        for number, line in enumerate(text.splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    assert found == [], "cite docs/ pages or Upstash's public docs instead:\n" + "\n".join(found)


def test_every_cited_section_exists() -> None:
    cited = 0
    broken = []
    for path, text in _files():
        for page, anchor in _SECTION_LINK.findall(text):
            cited += 1
            if not (DOCS / page).is_file() or anchor not in _anchors(DOCS / page):
                broken.append(f"{path.relative_to(ROOT)}: docs/{page}#{anchor}")
    assert broken == []
    assert cited >= 30  # the code does cite the rules it follows


def _pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted(DOCS.glob("*.md"))]


def test_every_link_inside_a_page_has_its_section() -> None:
    for page in _pages():
        missing = set(_IN_PAGE_LINK.findall(page.read_text())) - _anchors(page)
        assert missing == set(), f"{page.name} links to sections it lacks: {sorted(missing)}"


def test_every_relative_link_reaches_its_file_and_section() -> None:
    """README's contents list and the links between pages (docs/ci.md, docs/performance.md)."""
    broken = []
    for page in _pages():
        for target, anchor in _RELATIVE_LINK.findall(page.read_text()):
            path = (page.parent / target).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} does not exist")
            elif anchor and anchor not in _anchors(path):
                broken.append(f"{page.relative_to(ROOT)}: {target} has no section {anchor}")
    assert broken == []
