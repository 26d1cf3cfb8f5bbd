"""The documents name files that exist: a reader who follows ``imserver/actions/kinds.py`` from the requirements
table finds it (the layout changes; the documents must follow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *ROOT.glob("*/README.md")])
PATH = re.compile(r"`((?:[a-z_]+/)+[a-z_0-9.]*)`")
"""A repository path in backticks: at least one folder, e.g. ``imserver/actions/`` or ``bots/pathway/bot.py``."""


NOT_FILES = {
    "webadmin/",  # the staff console, not built yet (the README says so)
    "bots/hello/__init__.py", "bots/hello/bot.py",  # the bot the guide in bots/README.md has its reader write
}
PACKAGES = [p for p in ROOT.iterdir() if (p / "__init__.py").exists()]


def exists(path: str, document: Path) -> bool:
    """Relative to the repository, to ``tests/`` (the requirements table), to the document's folder, or to a
    package (the README's layout table names ``actions/`` in the row of ``imserver/``)."""
    return any((base / path).exists() for base in (ROOT, ROOT / "tests", document.parent, *PACKAGES))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_document_names_exists(document: Path) -> None:
    named = set(PATH.findall(document.read_text("utf-8"))) - NOT_FILES
    missing = sorted(p for p in named if not exists(p, document))
    assert not missing, f"{document.name} names files that do not exist: {missing}"
