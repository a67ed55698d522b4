"""One validator per field that several entry points take: product codes and report dates.

The SMS parser, the admin API, CSV imports and the demo data all call these, so what one
entry point refuses no other accepts (issue 8). Phone numbers have their own module,
`common.phones`; MT text is checked in `gateway.mt_text` (it needs the SMS splitter).

Each refusal is a `FieldError`: a ValueError whose message says what was wrong and how to
write it (pydantic turns it into a 422 with that message), carrying a `key` and `params` so
the SMS parser can say the same thing in the sender's language (commands/templates).
"""

from __future__ import annotations

import os
import re
from datetime import date
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

MAX_BACKDATE_ENV = "SMSGW_MAX_BACKDATE_DAYS"
# A month: a shop that missed a few days' reports, or a week's holiday, can still catch up;
# last year's figures cannot slip into this month's totals by a typo.
DEFAULT_MAX_BACKDATE_DAYS = 31

_PRODUCT_CODE = re.compile(r"[0-9]{4}")


class FieldError(ValueError):
    """A refused field value; ``key``/``params`` name the reason for translated replies."""

    def __init__(self, message: str, key: str, **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


# --- product codes ------------------------------------------------------------------------


def product_code(raw: str) -> str:
    """A product code is 4 digits (protocol.md): what an SMS can order, and nothing else."""
    text = str(raw).strip()
    if not (_PRODUCT_CODE.fullmatch(text) and text.isascii()):
        raise FieldError(f"product code {raw!r} must be 4 digits (e.g. 1001): that is what "
                         "retailers text in orders", "code", value=str(raw))
    return text


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# The pydantic field type for product codes (API bodies, CSV rows); 1001 as a JSON number is
# taken as "1001", but 12 is still refused (codes have exactly 4 digits).
ProductCode = Annotated[str, BeforeValidator(_as_text), AfterValidator(product_code)]


# --- report dates (SAL / STK) -------------------------------------------------------------


@lru_cache(maxsize=1)
def max_backdate_days() -> int:
    """How many days back a report may be dated (``SMSGW_MAX_BACKDATE_DAYS``, default 31)."""
    raw = os.environ.get(MAX_BACKDATE_ENV, str(DEFAULT_MAX_BACKDATE_DAYS)).strip()
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"{MAX_BACKDATE_ENV}={raw!r} must be a whole number of days (e.g. 31)")
    return int(raw)


def report_date(raw: str, *, today: date, max_back: int | None = None) -> date:
    """The date of a SAL/STK report from ``YYYYMMDD`` or ``MMDD``, never in the future and at
    most ``max_back`` days (default: the setting) before ``today`` (the service's local day).

    ``MMDD`` is the most recent such day not after today: on 2026-12-01, ``0115`` is
    2026-01-15 and ``1201`` is today. Nobody reports sales that have not happened yet, so a
    date in the future is a typo to refuse, not next year's report.
    """
    tok = str(raw)
    if not (tok.isascii() and tok.isdigit() and len(tok) in (4, 8)):
        raise FieldError(f"date {tok!r} must be YYYYMMDD or MMDD", "date", value=tok)
    limit = max_backdate_days() if max_back is None else max_back
    if len(tok) == 8:
        try:
            day = date(int(tok[:4]), int(tok[4:6]), int(tok[6:]))
        except ValueError:
            raise FieldError(f"no such date {tok!r}", "date_invalid", value=tok) from None
        if day > today:
            raise FieldError(f"date {day.isoformat()} is in the future", "date_future",
                             value=tok, date=day.isoformat())
    else:
        day = _latest_month_day(int(tok[:2]), int(tok[2:]), today, tok)
    if (today - day).days > limit:
        raise FieldError(
            f"date {day.isoformat()} is more than {limit} days ago (the limit for late "
            "reports)", "date_too_old", value=tok, date=day.isoformat(), days=limit)
    return day


def _latest_month_day(month: int, day: int, today: date, tok: str) -> date:
    # 0229 is found in the latest leap year (then usually refused as too old).
    for year in range(today.year, today.year - 9, -1):
        try:
            found = date(year, month, day)
        except ValueError:
            continue
        if found <= today:
            return found
    raise FieldError(f"no such date {tok!r}", "date_invalid", value=tok)

