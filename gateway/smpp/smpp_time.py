"""SMPP 3.4 time fields (§7.1.1): schedule_delivery_time and validity_period.

Absolute: "YYMMDDhhmmsstnnp" — t tenths of a second, nn the offset from UTC in quarter
hours, p '+' or '-'. Relative: "YYMMDDhhmmss000R" — years, months, days, … from now.
An empty field means "not set" (immediate delivery / SMSC default validity).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone

_FORMAT = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d)(\d{2})([+\-R])$")


class SmppTimeError(ValueError):
    pass


def parse_smpp_time(value: str, *, now: datetime) -> datetime | None:
    """The moment a time field names (aware UTC), or None when the field is empty."""
    value = value.strip()
    if not value:
        return None
    m = _FORMAT.match(value)
    if m is None:
        raise SmppTimeError(f"{value!r} is not YYMMDDhhmmsstnnp (SMPP 3.4 §7.1.1)")
    yy, mo, dd, hh, mi, ss, tenths, nn, p = m.groups()
    if p == "R":
        return _add_relative(now, int(yy), int(mo), int(dd), int(hh), int(mi), int(ss))
    offset = timedelta(minutes=15 * int(nn))
    tz = timezone(offset if p == "+" else -offset)
    try:
        local = datetime(2000 + int(yy), int(mo), int(dd), int(hh), int(mi), int(ss),
                         int(tenths) * 100_000, tzinfo=tz)
    except ValueError as exc:
        raise SmppTimeError(f"{value!r}: {exc}") from None
    return local.astimezone(UTC)


def _add_relative(now: datetime, years: int, months: int, days: int, hours: int,
                  minutes: int, seconds: int) -> datetime:
    month_index = now.month - 1 + months + 12 * years
    year, month = now.year + month_index // 12, month_index % 12 + 1
    day = min(now.day, calendar.monthrange(year, month)[1])
    shifted = now.replace(year=year, month=month, day=day)
    return shifted + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_smpp_time(moment: datetime) -> str:
    """An absolute SMPP time in UTC ("…000+")."""
    t = moment.astimezone(UTC)
    return t.strftime("%y%m%d%H%M%S") + f"{t.microsecond // 100_000}00+"
