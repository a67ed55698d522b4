"""Text normalisation before parsing (protocol.md, "Text rules")."""

from __future__ import annotations

import re
import unicodedata

# Separators between arguments; NFKC has already turned '，' into ','.
_SEPARATORS = re.compile(r"[\s,、;#]+")


def normalize(text: str) -> str:
    """NFKC (full-width digits, letters, ＊ ＃ ， become ASCII), trim, collapse separators."""
    text = unicodedata.normalize("NFKC", text)
    return _SEPARATORS.sub(" ", text).strip()


def is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"
