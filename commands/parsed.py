"""What the parser hands to the handlers: one small immutable value per understood SMS.

The parser (commands/parse.py) is pure: text in, `Parsed` or `ParseError` out, no store. The
handlers (commands/handlers/) check everything that needs data (registration, PIN, product
codes, quantity limits, order state) and produce the reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Item:
    """One `CODE*QTY` item; `position` is its 1-based place among the items (for errors)."""

    code: str  # 4 digits
    qty: int  # >= 1, or 0 where removal is allowed (MOD)
    position: int


@dataclass(frozen=True, slots=True)
class Parsed:
    """A message whose keyword and argument syntax are valid.

    `args` by command (keys are fixed; absent optional values are None):
      HELP  {"command": str | None}            the code asked about, e.g. "ORD"
      REG   {"account": str, "pin": str}
      PIN   {"old": str, "new": str}
      ORD   {"pin": str, "items": tuple[Item, ...]}
      MOD   {"pin": str, "order": str, "items": tuple[Item, ...]}
      CAN   {"pin": str, "order": str}
      RPT   {"pin": str}
      OQ    {"order": str | None}
      SAL   {"date": date, "items": tuple[Item, ...]}
      STK   {"date": date, "items": tuple[Item, ...]}
      SN    {"serials": tuple[str, ...]}
      BAL   {}
      Q     {"what": "SALES" | "STOCK" | "ROUTE", "period": "day" | "month" | None,
             "code": str | None}
      SUB   {"topic": str, "window": tuple[int, int] | None}   hours, e.g. (8, 20)
      UNSUB {"topic": str | None}               None means ALL (also STOP / TD / 退订 alone)
      CHG   {"pin": str, "phone": str}
      CFM   {"code": str}
    """

    command: str  # the command code, e.g. "ORD"
    lang: str  # "zh" when a Chinese keyword was used, else "en"
    keyword: str  # as the sender wrote it
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParseError:
    """A message that was not understood. Rendered as `ERR <code> <what>. HELP <cmd> ...`.

    `key` names a template (commands/templates/<lang>.yaml) and `params` fill it, so the
    same error reads naturally in both languages.
    """

    code: str  # "E01" unknown command, "E02" malformed arguments, "E07" quantity out of range
    lang: str
    command: str | None  # the command recognised, if any (for the HELP pointer)
    key: str
    params: dict[str, Any] = field(default_factory=dict)
