"""The console's two languages: one YAML catalogue (i18n.yaml), picked per user, and by the
browser's Accept-Language on the login page."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

LANGS = ("zh", "en")


@cache
def catalogue() -> dict[str, dict[str, str]]:
    return yaml.safe_load((Path(__file__).with_name("i18n.yaml")).read_text("utf-8"))


def translator(lang: str) -> Any:
    words = catalogue()

    def t(key: str, **args: Any) -> str:
        text = words.get(key, {}).get(lang) or key
        return text.format(**args) if args else text

    return t


def from_accept_language(header: str | None) -> str:
    """zh when the browser prefers Chinese over English, else en."""
    best, best_q = "en", -1.0
    for item in (header or "").split(","):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower()[:2]
        if lang in LANGS and q > best_q:
            best, best_q = lang, q
    return best
