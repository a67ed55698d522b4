"""HELP replies: the list of commands, or one command's format with an example.

    help_text(lang, command) -> str      command: a code ("ORD") or None for the list

English lists the codes, Chinese the Chinese keywords; both fit one SMS (160 GSM-7 / 70 UCS-2
characters). One command's reply is `help_cmd` (summary, format, example) when that fits one
SMS, else the shorter `help_one` (format and example); texts are in templates/<lang>/help.yaml.
"""

from __future__ import annotations

from commands.registry import REGISTRY, Registry
from commands.templates import LANGS, render

_GSM_EXTENSION = frozenset("^{}\\[~]|")


def fits_one_sms(text: str) -> bool:
    """160 GSM-7 septets (extension characters cost two), or 70 UCS-2 characters.

    Conservative: any non-ASCII character (or a backtick, not in GSM 03.38) means UCS-2.
    """
    if text.isascii() and "`" not in text:
        return len(text) + sum(ch in _GSM_EXTENSION for ch in text) <= 160
    return len(text) <= 70


def help_text(lang: str, command: str | None, registry: Registry = REGISTRY) -> str:
    lang = lang if lang in LANGS else "en"
    spec = registry.get(command) if command else None
    if spec is None:
        if lang == "zh":
            names = " ".join(s.name_zh for s in registry.specs.values())
        else:
            names = " ".join(registry.specs)
        return render(lang, "help", commands=names)
    zh = lang == "zh"
    values = {
        "code": spec.name_zh if zh else spec.code,
        "syntax": (spec.syntax_zh or spec.syntax) if zh else spec.syntax,
        "example": (spec.example_zh or spec.example) if zh else spec.example,
        "summary": (spec.summary_zh or spec.summary) if zh else spec.summary,
    }
    text = render(lang, "help_cmd", **values)
    if not fits_one_sms(text):
        text = render(lang, "help_one", **values)
    return text
