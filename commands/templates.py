"""Reply templates, kept as data, not scattered through the code.

Each language is a folder, `templates/<lang>/`, of YAML files that are merged: every owner
(parser, handlers, gateway) keeps its own file, and a key defined twice is an error.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

LANGS = ("en", "zh")


class TemplateError(ValueError):
    pass


@cache
def table(lang: str) -> dict[str, str]:
    folder = resources.files("commands").joinpath("templates", lang)
    merged: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.safe_load(entry.read_text("utf-8")) or {}
        if not isinstance(data, dict):
            raise TemplateError(f"templates/{lang}/{entry.name} must be a mapping")
        for key, value in data.items():
            if key in merged:
                raise TemplateError(f"template {key!r} defined twice in templates/{lang}/")
            merged[str(key)] = str(value)
    return merged


def render(lang: str, key: str, **values: object) -> str:
    templates = table(lang if lang in LANGS else "en")
    try:
        return templates[key].format(**values)
    except KeyError as exc:
        raise TemplateError(f"template {key!r} ({lang}) is missing or needs {exc}") from exc
