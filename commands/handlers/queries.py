"""Q: the figures a role may see (commands/roles.yaml decides which)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Row

from commands import clock
from commands.context import Context, Outcome
from commands.handlers.common import fail, money, ok, product_label, text
from commands.parsed import Parsed
from commands.roles import QueryRule, load_roles
from store.domain import products, queries


def q(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    what = str(parsed.args["what"]).upper()
    rule = load_roles().query(account.role, what)
    if rule is None:
        return fail(parsed, "E03", "e03_query_not_allowed",
                    what=text(parsed, f"q_subject_{what.lower()}"))
    if what == "SALES":
        return _sales(ctx, parsed, account, rule)
    if what == "STOCK":
        return _stock(ctx, parsed)
    return _route(ctx, parsed, account)


def _scope(ctx: Context, account: Row, rule: QueryRule) -> list[Row]:
    if rule.scope == "own":
        return [account]
    if rule.scope == "route":
        return queries.route_retailers(ctx.conn, account)
    return queries.all_retailers(ctx.conn)


def _sales(ctx: Context, parsed: Parsed, account: Row, rule: QueryRule) -> Outcome:
    today = ctx.today
    if parsed.args.get("period") == "month":
        start, period = today.replace(day=1), today.strftime("%Y-%m")
    else:
        start, period = today, today.isoformat()
    scope = _scope(ctx, account, rule)
    totals = queries.sales_totals(ctx.conn, [a.id for a in scope], start, today)
    parts = []
    if "units" in rule.figures:
        parts.append(text(parsed, "q_units", units=totals.units))
    if "revenue" in rule.figures:
        parts.append(text(parsed, "q_revenue", revenue=money(totals.revenue_cents)))
    if "margin" in rule.figures:
        pct = (100 * totals.margin_cents / totals.revenue_cents) if totals.revenue_cents else 0
        parts.append(text(parsed, "q_margin", margin=money(totals.margin_cents),
                          pct=f"{pct:.1f}"))
    figures = text(parsed, "list_sep").join(parts)
    if rule.scope == "own":
        return ok(parsed, "q_sales_own", period=period, figures=figures)
    return ok(parsed, "q_sales_group", period=period, figures=figures,
              group=(account.route or account.account_no) if rule.scope == "route"
              else text(parsed, "q_all"),
              reported=totals.accounts, total=len(scope))


def _stock(ctx: Context, parsed: Parsed) -> Outcome:
    code = parsed.args.get("code")
    if not code:
        return fail(parsed, "E02", "e02_missing_code")
    p = products.by_code(ctx.conn, str(code))
    if p is None or not p.active:
        return fail(parsed, "E06", "e06_unknown_product", code=code, pos=1)
    return ok(parsed, "q_stock", product=product_label(parsed, p, p.code), qty=p.stock_qty)


def _route(ctx: Context, parsed: Parsed, account: Row) -> Outcome:
    retailers = queries.route_retailers(ctx.conn, account)
    ids = [r.id for r in retailers]
    local_midnight = datetime.combine(ctx.today, datetime.min.time(), clock.SERVICE_TZ)
    ordered = queries.accounts_with_orders_since(ctx.conn, ids, local_midnight.astimezone(UTC))
    reported = queries.accounts_reported_on(ctx.conn, ids, ctx.today)
    missing = [f"{r.name}({r.account_no})" for r in retailers if r.id not in ordered]
    return ok(parsed, "q_route", route=account.route or "-", total=len(retailers),
              ordered=len(ordered), reported=len(reported),
              missing=text(parsed, "list_sep").join(missing) or "-")
