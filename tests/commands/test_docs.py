"""docs/commands.md is generated; it must match the registry, parser and templates."""

from __future__ import annotations

from pathlib import Path

from commands.docs import render_markdown
from commands.registry import REGISTRY

DOC = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def test_docs_commands_md_is_current() -> None:
    assert DOC.read_text("utf-8") == render_markdown(), (
        "docs/commands.md is stale: run `python -m commands.docs > docs/commands.md`")


def test_docs_list_every_command_and_alias() -> None:
    text = render_markdown()
    for spec in REGISTRY.specs.values():
        assert f"| {spec.code} |" in text
        for alias in spec.aliases:
            assert alias in text
