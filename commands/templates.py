"""Reply templates, kept as data (templates/<lang>.yaml), not scattered through the code."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

LANGS = ("en", "zh")


@cache
def _load(lang: str) -> dict[str, str]:
    text = resources.files("commands").joinpath("templates", f"{lang}.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"templates/{lang}.yaml must be a mapping")
    return {str(k): str(v) for k, v in data.items()}


def render(lang: str, key: str, **values: object) -> str:
    table = _load(lang if lang in LANGS else "en")
    return table[key].format(**values)
