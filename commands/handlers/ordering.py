"""ORD MOD CAN RPT OQ: orders by SMS.

Checks run in this order, so a message that fails several ways gets the first of: E03 (no
SMS ordering), E05/E04 (PIN), E08 (window; ORD/MOD/RPT — cancelling is allowed any time
while the order is unreviewed), E09 (order), E06/E07 (items), then E10 (funds: the order is
kept as pending_funds and the reply says so).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Row

from commands import clock
from commands.context import Context, Outcome
from commands.handlers import common
from commands.handlers.common import (
    Wanted,
    check_pin,
    check_products,
    fail,
    merge_items,
    money,
    ok,
    product_label,
    text,
)
from commands.parsed import Parsed
from store.domain import orders, products
from store.domain.orders import Line


def _order_gate(ctx: Context, parsed: Parsed, account: Row, *, window: bool) -> Outcome | None:
    if not account.sms_ordering:
        return fail(parsed, "E03", "e03_no_sms_ordering", account=account.account_no)
    denied = check_pin(ctx, parsed, account)
    if denied is not None:
        return denied
    return check_window(ctx, parsed, account) if window else None


def check_window(ctx: Context, parsed: Parsed, account: Row) -> Outcome | None:
    """E08 unless today (local) is an order day and now is inside the ordering window."""
    now = common.local(ctx)
    days = {int(d) for d in account.order_days.replace(" ", "").split(",") if d}
    if days and now.isoweekday() not in days:
        names = text(parsed, "list_sep").join(text(parsed, f"weekday_{d}") for d in sorted(days))
        return fail(parsed, "E08", "e08_not_order_day", days=names)
    start, end = account.order_window_start, account.order_window_end
    if start or end:
        hm = now.strftime("%H:%M")
        lo, hi = start or "00:00", end or "24:00"
        # An overnight window (22:00-02:00) wraps past midnight.
        inside = lo <= hm < hi if lo <= hi else (hm >= lo or hm < hi)
        if not inside:
            return fail(parsed, "E08", "e08_outside_window", start=lo, end=hi, now=hm)
    return None


def _order_id(value: object) -> int | None:
    s = str(value).strip().lstrip("#")
    return int(s) if s.isdigit() and len(s) <= 18 else None


def _own_order(ctx: Context, parsed: Parsed, account: Row, ref: object) -> tuple[Row | None,
                                                                               Outcome | None]:
    order_id = _order_id(ref)
    order = orders.get(ctx.conn, order_id) if order_id is not None else None
    if order is None or order.account_id != account.id:
        return None, fail(parsed, "E09", "e09_order_not_found", order=ref)
    return order, None


def _changeable(parsed: Parsed, order: Row) -> Outcome | None:
    if orders.is_changeable(order):
        return None
    return fail(parsed, "E09", "e09_order_not_changeable", order=order.id,
                status=text(parsed, f"status_{order.status}"))


def format_lines(ctx: Context, parsed: Parsed, lines: list[Line]) -> str:
    found = products.by_codes(ctx.conn, (x.product_code for x in lines))
    sep = text(parsed, "list_sep")
    return sep.join(
        text(parsed, "order_line", product=product_label(parsed, found.get(x.product_code),
                                                         x.product_code), qty=x.qty)
        for x in lines
    )


def _funds_status(account: Row, total: int) -> str:
    available = account.balance_cents + account.credit_cents
    return "pending_review" if available >= total else "pending_funds"


def _placed(ctx: Context, parsed: Parsed, account: Row, order_id: int, lines: list[Line],
            status: str, key: str, **extra: object) -> Outcome:
    """The reply for a placed/changed order: its lines and total, or E10 when short of funds."""
    total = orders.total_of(lines)
    if status == "pending_funds":
        return fail(parsed, "E10", "e10_insufficient", order=order_id, total=money(total),
                    available=money(account.balance_cents + account.credit_cents))
    return ok(parsed, key, order=order_id, lines=format_lines(ctx, parsed, lines),
              total=money(total), funds=text(parsed, "funds_ok"), **extra)


def _priced(found: dict[str, Row], code: str, qty: int) -> Line:
    return Line(code, qty, found[code].price_cents)


def ord_(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    denied = _order_gate(ctx, parsed, account, window=True)
    if denied is not None:
        return denied
    wanted = merge_items(parsed.args["items"])
    found, bad = check_products(ctx, parsed, wanted, limit_qty=True, allow_zero=False)
    if bad is not None:
        return bad
    lines = [_priced(found, w.code, w.qty) for w in wanted]
    status = _funds_status(account, orders.total_of(lines))
    order_id = orders.create(ctx.conn, account.id, lines, status=status, now=ctx.now,
                             mo_id=ctx.mo_id, detail="sms ORD")
    return _placed(ctx, parsed, account, order_id, lines, status, "ord_ok")


def mod(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    order, bad = _changeable_order(ctx, parsed, account, window=True)
    if bad is not None:
        return bad
    wanted = merge_items(parsed.args["items"])
    found, bad = check_products(ctx, parsed, [w for w in wanted if w.qty > 0],
                                limit_qty=True, allow_zero=False)
    if bad is not None:
        return bad
    changes: dict[str, Line | None] = {
        w.code: (_priced(found, w.code, w.qty) if w.qty > 0 else None) for w in wanted
    }
    lines = orders.modify(ctx.conn, order.id, changes, now=ctx.now)
    if not lines:
        orders.cancel(ctx.conn, order.id, now=ctx.now, detail="sms MOD: all lines removed")
        return ok(parsed, "mod_emptied", order=order.id)
    status = _funds_status(account, orders.total_of(lines))
    orders.set_status(ctx.conn, order.id, status, now=ctx.now, detail="sms MOD")
    return _placed(ctx, parsed, account, order.id, lines, status, "mod_ok")


def can(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    order, bad = _changeable_order(ctx, parsed, account, window=False)
    if bad is not None:
        return bad
    orders.cancel(ctx.conn, order.id, now=ctx.now, detail="sms CAN")
    return ok(parsed, "can_ok", order=order.id)


def _changeable_order(ctx: Context, parsed: Parsed, account: Row, *,
                      window: bool) -> tuple[Row, None] | tuple[None, Outcome]:
    """MOD and CAN: the gate, then the sender's own order, still open for change."""
    denied = _order_gate(ctx, parsed, account, window=window)
    if denied is not None:
        return None, denied
    order, bad = _own_order(ctx, parsed, account, parsed.args["order"])
    if order is None:
        return None, bad  # type: ignore[return-value]
    not_open = _changeable(parsed, order)
    if not_open is not None:
        return None, not_open
    return order, None


def rpt(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    """Place the previous (newest not cancelled) order again, at today's prices."""
    denied = _order_gate(ctx, parsed, account, window=True)
    if denied is not None:
        return denied
    previous = orders.latest(ctx.conn, account.id, exclude=("cancelled",))
    if previous is None:
        return fail(parsed, "E09", "e09_no_previous_order")
    wanted = [Wanted(x.product_code, x.qty, i)
              for i, x in enumerate(orders.lines(ctx.conn, previous.id), 1)]
    found, bad = check_products(ctx, parsed, wanted, limit_qty=True, allow_zero=False)
    if bad is not None:
        return bad
    lines = [_priced(found, w.code, w.qty) for w in wanted]
    status = _funds_status(account, orders.total_of(lines))
    order_id = orders.create(ctx.conn, account.id, lines, status=status, now=ctx.now,
                             mo_id=ctx.mo_id, detail=f"sms RPT of {previous.id}")
    return _placed(ctx, parsed, account, order_id, lines, status, "rpt_ok",
                   previous=previous.id)


def _local_date(dt: datetime) -> str:
    return dt.astimezone(clock.SERVICE_TZ).date().isoformat()


def oq(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    ref = parsed.args.get("order")
    if ref is None:
        order = orders.latest(ctx.conn, account.id)
        if order is None:
            return fail(parsed, "E09", "e09_no_orders")
    else:
        order, bad = _own_order(ctx, parsed, account, ref)
        if order is None:
            return bad  # type: ignore[return-value]
    lines = orders.lines(ctx.conn, order.id)
    status = text(parsed, f"status_{order.status}")
    if order.status == "rejected" and order.reject_reason:
        status = text(parsed, "status_rejected_reason", reason=order.reject_reason)
    return ok(parsed, "oq_ok", order=order.id, date=_local_date(order.created_at), status=status,
              lines=format_lines(ctx, parsed, lines) or "-", total=money(order.total_cents))
