"""What every handler shares: replies and errors from templates, the PIN lockout, money and
the ordering window in the service's local time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Row

from commands import clock
from commands.context import Context, Notice, Outcome
from commands.parsed import Item, Parsed
from commands.registry import REGISTRY
from commands.templates import render
from store.domain import accounts, products

# protocol.md: "after 5 wrong in 30 min the number is locked for 30 min".
PIN_MAX_FAILURES = 5
PIN_FAILURE_WINDOW = timedelta(minutes=30)
PIN_LOCK = timedelta(minutes=30)


def text(parsed: Parsed, key: str, /, **values: object) -> str:
    return render(parsed.lang, key, **values)


def command_name(parsed: Parsed) -> str:
    """The command as a reply in the sender's language names it: 订货 in Chinese, ORD."""
    spec = REGISTRY.get(parsed.command)
    return spec.name_zh if spec is not None and parsed.lang == "zh" else parsed.command


def ok(parsed: Parsed, key: str, /, *, notices: Iterable[Notice] = (), **values: object) -> Outcome:
    return Outcome(text(parsed, key, **values), parsed.lang, parsed.command,
                   notices=tuple(notices))


def fail(parsed: Parsed, code: str, key: str, /, **values: object) -> Outcome:
    """`ERR <code> <what>. HELP <cmd> for format` (protocol.md), in the reply language.

    The HELP pointer names the command as the sender wrote it in Chinese (帮助 订货 works),
    by its code in English.
    """
    what = text(parsed, key, **values)
    cmd = parsed.keyword if parsed.lang == "zh" else parsed.command
    reply = render(parsed.lang, "err", code=code, what=what, cmd=cmd)
    return Outcome(reply, parsed.lang, parsed.command, code)


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def local(ctx: Context) -> datetime:
    return clock.local(ctx.now)


def hhmm(dt: datetime) -> str:
    return dt.strftime("%H:%M")


# --- PIN -----------------------------------------------------------------------------------


def check_pin(ctx: Context, parsed: Parsed, account: Row) -> Outcome | None:
    """Apply the lockout rules to ctx.pin_ok (computed before the transaction).

    Locked: E05 whatever the PIN (a right PIN must not unlock early, or the lock would not
    slow a guesser down). Wrong: record it; the 5th within 30 min locks for 30 min (E05),
    else E04. Right: clears the failure count. None means go on.
    """
    if account.pin_locked_until is not None and ctx.now < account.pin_locked_until:
        return fail(parsed, "E05", "e05_locked", until=hhmm(account.pin_locked_until
                                                            .astimezone(clock.SERVICE_TZ)))
    if account.pin_hash is None:
        return fail(parsed, "E04", "e04_no_pin")
    if ctx.pin_ok:
        accounts.clear_pin_failures(ctx.conn, account.id)
        if ctx.pin_rehash is not None and ctx.pin_rehash[0] == account.pin_hash:
            # Upgrade to the keyed hash (or the current key) now that the PIN is known.
            accounts.set_pin_hash(ctx.conn, account.id, ctx.pin_rehash[1], now=ctx.now)
        return None
    accounts.record_pin_failure(ctx.conn, account.id, now=ctx.now)
    failures = accounts.pin_failures_since(ctx.conn, account.id, ctx.now - PIN_FAILURE_WINDOW)
    if failures >= PIN_MAX_FAILURES:
        until = ctx.now + PIN_LOCK
        accounts.lock_pin(ctx.conn, account.id, until, now=ctx.now)
        accounts.clear_pin_failures(ctx.conn, account.id)
        return fail(parsed, "E05", "e05_locked", until=hhmm(until.astimezone(clock.SERVICE_TZ)))
    return fail(parsed, "E04", "e04_wrong_pin", left=PIN_MAX_FAILURES - failures)


# --- items and products ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wanted:
    code: str
    qty: int
    position: int  # of the item's first mention, for errors


def merge_items(items: Iterable[Item]) -> list[Wanted]:
    """One entry per code, quantities of repeated codes added up, in first-mention order."""
    merged: dict[str, Wanted] = {}
    for item in items:
        prev = merged.get(item.code)
        if prev is None:
            merged[item.code] = Wanted(item.code, item.qty, item.position)
        else:
            merged[item.code] = Wanted(item.code, prev.qty + item.qty, prev.position)
    return list(merged.values())


def check_products(
    ctx: Context, parsed: Parsed, wanted: list[Wanted], *, limit_qty: bool, allow_zero: bool
) -> tuple[dict[str, Row], Outcome | None]:
    """Products for the items; E06 for an unknown/inactive code, E07 for a quantity out of
    range (below 1, or above the product's max_qty when `limit_qty`)."""
    found = products.by_codes(ctx.conn, (w.code for w in wanted))
    for w in wanted:
        p = found.get(w.code)
        if p is None:
            return found, fail(parsed, "E06", "e06_unknown_product", code=w.code, pos=w.position)
        if not p.active:
            return found, fail(parsed, "E06", "e06_inactive_product", code=w.code,
                               pos=w.position)
        if w.qty < 0 or (w.qty == 0 and not allow_zero):
            return found, fail(parsed, "E07", "e07_qty_min", code=w.code, pos=w.position)
        if limit_qty and w.qty > p.max_qty:
            return found, fail(parsed, "E07", "e07_qty_max", qty=w.qty, code=w.code,
                               name=products.name(p, parsed.lang), max=p.max_qty,
                               pos=w.position)
    return found, None


def product_label(parsed: Parsed, product: Row | None, code: str) -> str:
    name = products.name(product, parsed.lang) if product is not None else code
    return text(parsed, "product_label", name=name, code=code)
