"""The one check for the text of an MT (a message we send): the API's single and bulk sends,
broadcasts and `smsgw send` all call `mt_text`, so what one refuses no other queues.

It lives in gateway/, not common/, because it needs the SMS splitter (gateway/smpp/text.py):
the part count is the splitter's own, so the limit means exactly what goes on the air.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

from common.fields import FieldError
from gateway.smpp.text import DC_GSM7, MessageTooLong, choose_encoding, count_parts

MAX_PARTS_ENV = "SMSGW_MAX_MT_PARTS"
# Ten parts is 1,530 GSM characters or 670 Chinese ones: far more than any notice needs, and
# a typo'd paste of a whole document is refused instead of billed as 255 SMS. The protocol
# ceiling is 255 (the concatenation IE counts parts in one octet, TS 23.040 §9.2.3.24.1).
DEFAULT_MAX_PARTS = 10
CEILING = 255


@lru_cache(maxsize=1)
def max_parts() -> int:
    """The most SMS parts one MT may take (``SMSGW_MAX_MT_PARTS``, default 10, at most 255)."""
    raw = os.environ.get(MAX_PARTS_ENV, str(DEFAULT_MAX_PARTS)).strip()
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= CEILING:
        raise ValueError(f"{MAX_PARTS_ENV}={raw!r} must be a number of SMS parts, 1 to {CEILING}")
    return int(raw)


def mt_text(text: str, *, limit: int | None = None) -> str:
    """``text`` unchanged if it can be sent as one message of at most ``limit`` parts, else a
    `FieldError` saying what is wrong and how long it may be."""
    if not isinstance(text, str) or not text.strip():
        raise FieldError("text is empty: give the message to send", "text_empty")
    for i, ch in enumerate(text):
        if ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF:
            # NUL cannot be stored (PostgreSQL text) and a lone surrogate cannot be encoded.
            raise FieldError(f"text has an unusable character {ch!r} at position {i}",
                             "text_char", position=i)
    most = max_parts() if limit is None else limit
    alphabet, per_part = ("GSM 7-bit", 153) if choose_encoding(text) == DC_GSM7 else \
        ("Unicode (UCS2)", 67)
    try:
        parts = count_parts(text)
    except MessageTooLong:
        parts = CEILING + 1
    if parts > most:
        raise FieldError(
            f"text is {len(text)} characters, {parts} SMS parts in {alphabet}; at most {most} "
            f"parts ({most * per_part} characters) are allowed ({MAX_PARTS_ENV})",
            "text_too_long", parts=parts, max=most)
    return text


# The pydantic field type for MT text: a refusal is a 422 with the message above.
MtText = Annotated[str, AfterValidator(mt_text)]
