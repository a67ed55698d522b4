"""Reply templates, kept as data, not scattered through the code.

Each language is a folder, `templates/<lang>/`, of YAML files that are merged: every owner
(parser, handlers, gateway) keeps its own file, and a key defined twice is an error.

Placeholders are str.format names, plus one convention for counted nouns: a format spec with
a `|` lists the noun's plural forms, and the placeholder becomes the number and the noun,
`{items:item|items}` → "1 item", "2 items". The forms are CLDR's plural categories in order
(English: one|other; Chinese has only `other`, so a zh template never needs one). Writing the
words in the template keeps them where a translator looks, and a language that needs more
categories (Russian: one|few|many|other) adds its rule to `PLURAL_RULES`, not to the code
that fills the template. Babel carries the rules of every locale but is a large dependency for
two languages whose rules are one line each.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

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


def _english_plural(n: int) -> int:
    return 0 if n == 1 else 1  # CLDR en: one (n = 1), other


# Language -> (n -> index into the template's forms). CLDR plural rules, integers only.
PLURAL_RULES: dict[str, Callable[[int], int]] = {
    "en": _english_plural,
    "zh": lambda n: 0,  # CLDR zh: other only
}


class _Formatter(string.Formatter):
    def __init__(self, lang: str) -> None:
        self.plural = PLURAL_RULES.get(lang, _english_plural)

    def format_field(self, value: Any, format_spec: str) -> str:
        if "|" not in format_spec:
            return super().format_field(value, format_spec)
        forms = format_spec.split("|")
        try:
            index = self.plural(abs(int(value)))
        except (TypeError, ValueError):
            index = len(forms) - 1  # not a count: the general ("other") form
        return f"{value} {forms[min(index, len(forms) - 1)]}"


def fill(lang: str, template: str, values: Mapping[str, object]) -> str:
    """`template` with `values`, in `lang` (plural forms as above). KeyError for a missing
    value, ValueError for a malformed template."""
    return _Formatter(lang if lang in LANGS else "en").vformat(template, (), values)


def render(lang: str, key: str, **values: object) -> str:
    lang = lang if lang in LANGS else "en"
    templates = table(lang)
    try:
        return fill(lang, templates[key], values)
    except KeyError as exc:
        raise TemplateError(f"template {key!r} ({lang}) is missing or needs {exc}") from exc
