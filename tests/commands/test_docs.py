"""docs/commands.md is generated; it must match the registry, parser and templates."""

from __future__ import annotations

import re
from pathlib import Path

from commands.docs import render_markdown
from commands.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "commands.md"


def test_docs_commands_md_is_current() -> None:
    assert DOC.read_text("utf-8") == render_markdown(), (
        "docs/commands.md is stale: run `python -m commands.docs > docs/commands.md`")


def test_docs_list_every_command_and_alias() -> None:
    text = render_markdown()
    for spec in REGISTRY.specs.values():
        assert f"| {spec.code} |" in text
        for alias in spec.aliases:
            assert alias in text


def test_docs_point_only_inside_the_repository() -> None:
    """Issue 8: docs/commands.md must not point outside the repository (no URLs, no
    absolute paths, every relative link resolves to a file or folder of the repository)."""
    text = render_markdown()
    assert not re.search(r"https?://|file:|(?<![\w.])/(work|home|tmp|usr|etc)/", text)
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links, "expected links to the sources"
    for link in links:
        target = (DOC.parent / link).resolve()
        assert target.is_relative_to(ROOT) and target.exists(), link
