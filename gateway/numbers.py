"""Several service numbers: short codes, long numbers and sub-codes (issue 12, part 3).

SMSGW_NUMBERS_FILE names a YAML file::

    numbers:
      - number: "10690"          # the main short code: every command, Chinese by default
        language: zh
      - number: "1069088"        # 10690 + sub-code 88, as the operator allocated it
        keywords: [HELP, BAL, Q] # only these built-in commands here (others: ERR E01)
        language: en

An MO belongs to the longest number its destination starts with (an operator may pass the
digits a person typed after a sub-code). Its reply goes out from that number; rules may name
it (``service_number``); ``keywords`` limits the built-in commands; ``language`` is the
language of the error answer to a text that was not understood. Without the file the
gateway has one number, SMSGW_SOURCE_ADDR.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.models import LANGS

_KEYS = {"number", "keywords", "language", "name"}


class NumbersFileError(ValueError):
    """The numbers file is unusable; the message names the entry and what to fix."""


@dataclass(frozen=True, slots=True)
class ServiceNumber:
    number: str
    keywords: frozenset[str] | None = None  # built-in commands enabled; None: all
    language: str | None = None
    name: str | None = None

    def allows(self, command: str | None) -> bool:
        return self.keywords is None or command is None or command in self.keywords


class NumberPlan:
    def __init__(self, numbers: Iterable[ServiceNumber]) -> None:
        self.numbers = tuple(sorted(numbers, key=lambda n: -len(n.number)))

    def match(self, dest: str) -> ServiceNumber | None:
        d = dest.strip().removeprefix("+")
        return next((n for n in self.numbers if d.startswith(n.number)), None)


def parse_numbers(data: Any, *, source: str = "numbers",
                  known_commands: Iterable[str] | None = None) -> NumberPlan:
    if isinstance(data, Mapping):
        data = data.get("numbers")
    if not isinstance(data, list) or not data:
        raise NumbersFileError(f"{source}: expected 'numbers:' with a non-empty list")
    if known_commands is None:
        from commands.registry import REGISTRY

        known_commands = REGISTRY.specs
    known = {c.upper() for c in known_commands}
    out: list[ServiceNumber] = []
    seen: set[str] = set()
    for i, entry in enumerate(data, 1):
        where = f"{source}: number #{i}"
        if not isinstance(entry, Mapping):
            raise NumbersFileError(f"{where}: expected a mapping with 'number'")
        unknown = set(entry) - _KEYS
        if unknown:
            raise NumbersFileError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: "
                                   f"{', '.join(sorted(_KEYS))})")
        number = str(entry.get("number", "")).strip()
        if not (number.isascii() and number.isdigit()) or len(number) > 32:
            raise NumbersFileError(f"{where}: number {entry.get('number')!r} must be digits "
                                   "(quote it in YAML: '10690')")
        if number in seen:
            raise NumbersFileError(f"{where}: number {number} listed twice")
        seen.add(number)
        words = entry.get("keywords")
        keywords = None
        if words is not None:
            if not isinstance(words, list):
                raise NumbersFileError(f"{where} ({number}): keywords must be a list")
            keywords = frozenset(str(w).strip().upper() for w in words)
            bad = sorted(keywords - known)
            if bad:
                raise NumbersFileError(f"{where} ({number}): unknown command(s) {bad} "
                                       f"(one of {', '.join(sorted(known))})")
        lang = entry.get("language")
        if lang is not None and lang not in LANGS:
            raise NumbersFileError(f"{where} ({number}): language {lang!r} is not one of "
                                   f"{', '.join(LANGS)}")
        out.append(ServiceNumber(number, keywords, lang, entry.get("name")))
    return NumberPlan(out)


def load_numbers(path: str | Path) -> NumberPlan:
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NumbersFileError(f"cannot read numbers file {p}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise NumbersFileError(f"{p}: not valid YAML: {exc}") from exc
    return parse_numbers(data, source=str(p))
