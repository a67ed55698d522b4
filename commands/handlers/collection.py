"""SAL STK SN: data collection from retailers."""

from __future__ import annotations

from sqlalchemy.engine import Row

from commands.context import Context, Outcome
from commands.handlers.common import check_products, fail, merge_items, money, ok
from commands.parsed import Parsed
from store.domain import reports, serials

IMEI_LENGTH = 15
SERIAL_MAX = 32  # serial_events.serial


def sal(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    """Daily sales; a resend for the same date replaces the report. Quantities are not
    limited by max_qty (that is an order limit); revenue uses today's prices, kept per line."""
    day = parsed.args["date"]
    wanted = merge_items(parsed.args["items"])
    found, bad = check_products(ctx, parsed, wanted, limit_qty=False, allow_zero=False)
    if bad is not None:
        return bad
    lines = {w.code: (w.qty, found[w.code].price_cents, found[w.code].cost_cents)
             for w in wanted}
    _, replaced = reports.upsert_sales(ctx.conn, account.id, day, lines, now=ctx.now)
    units = sum(q for q, _, _ in lines.values())
    revenue = sum(q * p for q, p, _ in lines.values())
    return ok(parsed, "sal_replaced" if replaced else "sal_ok", date=day.isoformat(),
              items=len(lines), units=units, revenue=money(revenue))


def stk(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    """Stock count for a date; same replace rule as SAL."""
    day = parsed.args["date"]
    wanted = merge_items(parsed.args["items"])
    _, bad = check_products(ctx, parsed, wanted, limit_qty=False, allow_zero=True)
    if bad is not None:
        return bad
    lines = {w.code: w.qty for w in wanted}
    _, replaced = reports.upsert_stock(ctx.conn, account.id, day, lines, now=ctx.now)
    return ok(parsed, "stk_replaced" if replaced else "stk_ok", date=day.isoformat(),
              items=len(lines), units=sum(lines.values()))


def luhn_ok(digits: str) -> bool:
    """The Luhn check digit rule (ISO/IEC 7812-1), which IMEIs use (3GPP TS 23.003 §6.2.1)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_imei(serial: str) -> bool:
    return len(serial) == IMEI_LENGTH and serial.isdigit()


def sn(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    """Units sold by serial. 15-digit numeric serials are IMEIs and must pass Luhn; other
    serials are taken as they are. Valid serials are recorded even when others in the same
    message are invalid (the reply is then E02 naming the invalid ones, with the counts)."""
    new = dup = 0
    invalid: list[str] = []
    for raw in parsed.args["serials"]:
        serial = str(raw).upper()
        imei = is_imei(serial)
        if (imei and not luhn_ok(serial)) or len(serial) > SERIAL_MAX or not serial.isalnum():
            invalid.append(serial)
            continue
        if serials.record(ctx.conn, account.id, serial, is_imei=imei, now=ctx.now,
                          mo_id=ctx.mo_id):
            dup += 1
        else:
            new += 1
    if invalid:
        return fail(parsed, "E02", "e02_invalid_serial", serials=" ".join(invalid), new=new,
                    dup=dup)
    return ok(parsed, "sn_ok", new=new, dup=dup)
