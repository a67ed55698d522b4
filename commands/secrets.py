"""Masking of secrets (PINs, CFM codes) in MO text: THE one place that knows how.

    mask("PIN 123456 654321")      -> "PIN ****** ******"
    mask("订货１２３４５６ 1001*5")  -> "订货****** 1001*5"
    mask_parts(["ORD 123", "456 1001*5"]) -> ["ORD ***", "*** 1001*5"]

Which arguments are secrets comes from the command registry (`CommandSpec.secret_args`), so a
new command declares its secrets where it is defined. The keyword and the arguments are found
as the parser finds them (normalise, match the keyword, split on separators), then each
secret argument is replaced character for character in the text AS RECEIVED: full-width
digits, odd separators and everything else stay as the person typed them, and the masked
text has the same length (so parts of a long message can be masked as one text and split
back). A malformed secret (`ORD 12345 1001*5`, a wrong PIN is one typo from the right one)
is masked too: masking depends on the position, not on the argument being valid.

Where it is applied: the MO log line, and the stored MO (text and raw user data) in the
transaction that marks it processed (store/inbound.py), plus the API reads of MOs as a
second line of defence for MOs still being processed.
"""

from __future__ import annotations

import re
import unicodedata

from commands.normalize import normalize, strip_trailing_punctuation
from commands.registry import REGISTRY, Registry

MASK = "*"

# The parser's separators (commands/normalize.py), seen one character at a time.
_TOKEN = re.compile(r"[^\s,、;#\u200b\u200c\u200d\u2060\ufeff]+")
_SEPARATOR = re.compile(r"[\s,、;#\u200b\u200c\u200d\u2060\ufeff]*")


def secret_positions(text: str, registry: Registry = REGISTRY) -> tuple[int, ...]:
    """The secret argument positions of the command `text` is, () when none."""
    match = registry.match(strip_trailing_punctuation(normalize(text)))
    return match.spec.secret_args if match is not None else ()


def mask(text: str, registry: Registry = REGISTRY) -> str:
    """`text` with every secret argument replaced by `*`, one per character; same length."""
    if not isinstance(text, str) or not text:
        return text
    match = registry.match(strip_trailing_punctuation(normalize(text)))
    if match is None or not match.spec.secret_args:
        return text
    # A per-character NFKC view of the text, each view character knowing its raw index, so
    # that arguments found as the parser sees them are masked where the person typed them.
    view_chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for c in (ch if ch.isascii() else unicodedata.normalize("NFKC", ch)):
            view_chars.append(c)
            origin.append(i)
    view = "".join(view_chars)
    start = _SEPARATOR.match(view).end()  # type: ignore[union-attr]
    end = start + len(match.keyword)
    if view[start:end].upper() != match.keyword.upper():
        return _mask_normalised(text, registry)  # a text the view cannot follow: be safe
    masked = list(text)
    for index, token in enumerate(_TOKEN.finditer(view, end)):
        if index > max(match.spec.secret_args):
            break
        if index in match.spec.secret_args:
            for raw in range(origin[token.start()], origin[token.end() - 1] + 1):
                masked[raw] = MASK
    return "".join(masked)


def _mask_normalised(text: str, registry: Registry) -> str:
    norm = strip_trailing_punctuation(normalize(text))
    match = registry.match(norm)
    assert match is not None
    args = match.rest.split(" ") if match.rest else []
    args = [MASK * len(a) if i in match.spec.secret_args else a for i, a in enumerate(args)]
    return " ".join([match.keyword, *args])


def mask_parts(parts: list[str], registry: Registry = REGISTRY) -> list[str]:
    """The parts of one long message (in order), masked as the whole text they make."""
    whole = mask("".join(parts), registry)
    if len(whole) != sum(len(p) for p in parts):  # the normalised fallback: keep it whole
        return [whole] + [MASK * len(p) for p in parts[1:]]
    out, at = [], 0
    for part in parts:
        out.append(whole[at:at + len(part)])
        at += len(part)
    return out
