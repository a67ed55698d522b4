"""Figures for `Q`: sales totals, company stock, route overview."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store.models import accounts, orders, sales_lines, sales_reports


@dataclass(frozen=True, slots=True)
class SalesTotals:
    accounts: int  # distinct accounts that reported in the range
    units: int
    revenue_cents: int
    cost_cents: int

    @property
    def margin_cents(self) -> int:
        return self.revenue_cents - self.cost_cents


def sales_totals(
    conn: Connection, account_ids: list[int], start: date, end: date
) -> SalesTotals:
    """Sales of `account_ids` reported for dates in [start, end]."""
    if not account_ids:
        return SalesTotals(0, 0, 0, 0)
    in_range = sa.and_(
        sales_reports.c.account_id.in_(account_ids),
        sales_reports.c.report_date >= start,
        sales_reports.c.report_date <= end,
    )
    n = conn.execute(
        sa.select(sa.func.count(sa.distinct(sales_reports.c.account_id))).where(in_range)
    ).scalar_one()
    row = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(sales_lines.c.qty), 0),
            sa.func.coalesce(sa.func.sum(sales_lines.c.qty * sales_lines.c.price_cents), 0),
            sa.func.coalesce(sa.func.sum(sales_lines.c.qty * sales_lines.c.cost_cents), 0),
        )
        .select_from(sales_lines.join(sales_reports))
        .where(in_range)
    ).one()
    return SalesTotals(int(n), int(row[0]), int(row[1]), int(row[2]))


def route_retailers(conn: Connection, manager: Row) -> list[Row]:
    """Active retailers a manager looks after: managed by it, or on its route."""
    cond = accounts.c.manager_id == manager.id
    if manager.route:
        cond = sa.or_(cond, accounts.c.route == manager.route)
    q = (
        sa.select(accounts)
        .where(accounts.c.role == "retailer", accounts.c.active, cond)
        .order_by(accounts.c.account_no)
    )
    return list(conn.execute(q))


def all_retailers(conn: Connection) -> list[Row]:
    q = sa.select(accounts).where(accounts.c.role == "retailer", accounts.c.active)
    return list(conn.execute(q.order_by(accounts.c.account_no)))


def accounts_with_orders_since(
    conn: Connection, account_ids: list[int], since: sa.ColumnElement | object
) -> set[int]:
    """Which of `account_ids` placed a (non-cancelled) order created at or after `since`."""
    if not account_ids:
        return set()
    q = sa.select(orders.c.account_id).distinct().where(
        orders.c.account_id.in_(account_ids),
        orders.c.created_at >= since,
        orders.c.status != "cancelled",
    )
    return {int(r[0]) for r in conn.execute(q)}


def accounts_reported_on(conn: Connection, account_ids: list[int], day: date) -> set[int]:
    if not account_ids:
        return set()
    q = sa.select(sales_reports.c.account_id).where(
        sales_reports.c.account_id.in_(account_ids), sales_reports.c.report_date == day
    )
    return {int(r[0]) for r in conn.execute(q)}
