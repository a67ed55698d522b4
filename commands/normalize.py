"""Text normalisation before parsing (protocol.md, "Text rules")."""

from __future__ import annotations

import re
import unicodedata

# Separators between arguments; NFKC has already turned '，' into ',' and '；' into ';'.
# Zero-width spaces and the BOM (invisible, pasted from chat apps) count as separators too.
_SEPARATORS = re.compile(r"[\s,、;#\u200b\u200c\u200d\u2060\ufeff]+")
_ASCII_SEPARATORS = re.compile(r"[\s,;#]+")

# Sentence punctuation people add at the end ("STOP.", "HELP?", "退订。"); dropped by the
# parser, never when it is the whole message ("?" is HELP).
_TRAILING = re.compile(r"(?<=.)[.!?。…]+$")


def normalize(text: str) -> str:
    """NFKC (full-width digits, letters, ＊ ＃ ， become ASCII), trim, collapse separators."""
    if text.isascii():
        return _ASCII_SEPARATORS.sub(" ", text).strip()
    text = unicodedata.normalize("NFKC", text)
    return _SEPARATORS.sub(" ", text).strip()


def strip_trailing_punctuation(text: str) -> str:
    """`STOP.` → `STOP`, `HELP?` → `HELP`; `?` stays `?`. Input is normalised text."""
    if text and text[-1] in ".!?。…":
        return _TRAILING.sub("", text).rstrip()
    return text


def is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"
