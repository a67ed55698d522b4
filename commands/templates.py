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

Operators may override a template (store/template_overrides.py, edited through the API and
the console): ``check_override`` validates the text, and ``OVERRIDES`` (an `OverrideCache`)
lays the stored overrides over the YAML defaults. ``render`` only reads a dict: the cache is
refreshed by the MO processor before each message (a version read at most every few
seconds, like the rules' cache), so every instance picks an edit up without a restart.
"""

from __future__ import annotations

import logging
import re
import string
import threading
import time as _time
import weakref
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from store.store import Store

log = logging.getLogger("smsgw.templates")

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
    templates = OVERRIDES.effective.get(lang) or table(lang)
    try:
        return fill(lang, templates[key], values)
    except KeyError as exc:
        raise TemplateError(f"template {key!r} ({lang}) is missing or needs {exc}") from exc


def current(lang: str) -> dict[str, str]:
    """Every template of `lang` as replies use it: the YAML defaults, overrides applied."""
    return dict(OVERRIDES.effective.get(lang) or table(lang))


# --- validation of an operator's text ----------------------------------------------------------


def placeholders(template: str) -> set[str]:
    """The value names a template uses (`{items:item|items}` → items). ValueError when the
    braces do not parse."""
    return {re.split(r"[.\[]", name, maxsplit=1)[0]
            for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _allowed_in_zh() -> frozenset[str]:
    # The protocol's own words (ERR, command keywords and aliases) and topic codes in the
    # registry's examples; imported late: the registry's help renders templates.
    from commands.registry import REGISTRY

    return frozenset({"ERR", "SALES"} | {k.upper() for s in REGISTRY.specs.values()
                                        for k in (s.code, *s.pinyin, *s.english)})


def english_words(text: str) -> list[str]:
    """ASCII words in a Chinese text that a Chinese reader would not expect: anything but
    the protocol's words and codes (words with a digit: R1001, E03)."""
    allowed = _allowed_in_zh()
    return [w for w in re.findall(r"[A-Za-z][A-Za-z0-9]*", text)
            if w.upper() not in allowed and not any(ch.isdigit() for ch in w)]


class _Sample(dict[str, object]):
    """Any placeholder filled with a count (2), which is also how names and codes look."""

    def __missing__(self, key: str) -> object:
        return 2


def check_override(lang: str, key: str, text: str) -> str:
    """`text` fit to replace template `key` of `lang`, or TemplateError saying what to fix:
    an unknown key, a placeholder missing or not known to the default (by name), a plural
    spec without its forms, braces that do not parse, English words in a Chinese text."""
    if lang not in LANGS:
        raise TemplateError(f"unknown language {lang!r}; use one of {', '.join(LANGS)}")
    default = table(lang).get(key)
    if default is None:
        raise TemplateError(f"no template {key!r} in {lang}")
    if not text.strip():
        raise TemplateError("the text is empty (delete the override to restore the default)")
    try:
        used = placeholders(text)
    except ValueError as exc:
        raise TemplateError(f"the text does not parse: {exc} (write {{{{ and }}}} for a "
                            "literal brace)") from None
    wanted = placeholders(default)
    if used - wanted:
        raise TemplateError(f"unknown placeholder(s) {_names(used - wanted)}; this template "
                            f"has {_names(wanted) or 'none'}")
    if wanted - used:
        raise TemplateError(f"missing placeholder(s) {_names(wanted - used)}")
    need = 2 if lang == "en" else 1  # CLDR categories (one|other; zh: other)
    for _, name, spec, _ in string.Formatter().parse(text):
        if name is not None and spec and "|" in spec:
            forms = spec.split("|")
            if len(forms) < need or not all(f.strip() for f in forms):
                raise TemplateError(f"plural {{{name}:{spec}}} needs {need} non-empty forms "
                                    f"separated by | (e.g. {{{name}:item|items}})")
    try:
        filled = fill(lang, text, _Sample())
    except (ValueError, IndexError) as exc:
        raise TemplateError(f"the text does not format: {exc}") from None
    if lang == "zh" and (words := english_words(filled)):
        raise TemplateError(f"English word(s) in a Chinese template: {', '.join(words)}")
    return text


def _names(names: set[str]) -> str:
    return ", ".join("{" + n + "}" for n in sorted(names))


# --- overrides laid over the defaults ------------------------------------------------------


DEFAULT_CHECK_INTERVAL = 5.0  # seconds between looks at the templates version


class OverrideCache:
    """The templates with the stored overrides applied, reloaded when the version moves.

    ``effective`` is replaced whole (never mutated), so `render` reads it without a lock.
    ``refresh`` does no I/O while the check interval has not passed; otherwise one version
    read, and the overrides are read only when it changed (or the store is another one).
    """

    def __init__(self, *, check_interval: float = DEFAULT_CHECK_INTERVAL,
                 clock: Callable[[], float] = _time.monotonic) -> None:
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self.effective: dict[str, dict[str, str]] = {}
        # The store (weakly: a test's gateway may go, another come) and version loaded.
        self._store: weakref.ref[Any] | None = None
        self._version: str | None = None
        self._checked_at = float("-inf")

    def invalidate(self) -> None:
        with self._lock:
            self._checked_at = float("-inf")

    def _loaded_from(self, store: Any) -> bool:
        return self._store is not None and self._store() is store

    def load(self, conn: Connection, store: Any = None) -> None:
        """Read the version and, when it moved, the overrides (``store``: whose they are)."""
        from store import template_overrides as stored

        version = stored.get_version(conn)
        with self._lock:
            self._checked_at = self._clock()
            if self._loaded_from(store) and self._version == version:
                return
        rows = stored.all_overrides(conn) if version is not None else {}
        effective = {lang: dict(table(lang)) for lang in LANGS}
        for (lang, key), text in rows.items():
            if key in effective.get(lang, {}):  # a key dropped by a release: default gone
                effective[lang][key] = text
        with self._lock:
            self.effective = effective if rows else {}
            self._store = weakref.ref(store) if store is not None else None
            self._version = version
        log.info("template overrides loaded: %d (version %s)", len(rows), version)

    async def refresh(self, store: Store) -> None:
        with self._lock:
            if (self._loaded_from(store)
                    and self._clock() - self._checked_at < self.check_interval):
                return
        await store.read(lambda c: self.load(c, store))


OVERRIDES = OverrideCache()
