"""Daily sales reports and stock counts: one per account and date; a resend replaces it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.events import dialect_insert
from store.fastsql import FastStatement
from store.models import sales_lines, sales_reports, stock_counts, stock_lines


class _Header:
    """A report header's statements (every SAL and STK runs them), compiled once."""

    def __init__(self, table: sa.Table, date_col: str, lines: sa.Table, line_key: str) -> None:
        self.find = FastStatement(sa.select(table.c.id).where(
            table.c.account_id == sa.bindparam("b_account"),
            table.c[date_col] == sa.bindparam("b_day")))

        def upsert(conn: Connection) -> sa.ClauseElement:
            ins = dialect_insert(conn, table).values(
                account_id=sa.bindparam("b_account"), created_at=sa.bindparam("b_now"),
                updated_at=sa.bindparam("b_now"), **{date_col: sa.bindparam("b_day")})
            return ins.on_conflict_do_update(
                index_elements=["account_id", date_col],
                set_={"updated_at": ins.excluded.updated_at}).returning(table.c.id)

        self.upsert = FastStatement(upsert)
        self.clear_lines = FastStatement(lines.delete().where(
            lines.c[line_key] == sa.bindparam("b_header")))

    def save(self, conn: Connection, account_id: int, day: date, now: datetime
             ) -> tuple[int, bool]:
        """(header id, replaced) — safe against a concurrent first insert; old lines gone."""
        key = {"b_account": account_id, "b_day": day}
        existing = self.find.scalar(conn, key)
        header = int(self.upsert.scalar(conn, {**key, "b_now": now}))
        self.clear_lines.run(conn, {"b_header": header})
        return header, existing is not None


_SALES = _Header(sales_reports, "report_date", sales_lines, "report_id")
_STOCK = _Header(stock_counts, "count_date", stock_lines, "count_id")
_SALES_LINES = FastStatement(sales_lines.insert(), keys=(
    "report_id", "product_code", "qty", "price_cents", "cost_cents"))


def upsert_sales(
    conn: Connection,
    account_id: int,
    day: date,
    lines: Mapping[str, tuple[int, int, int]],
    *,
    now: datetime,
) -> tuple[int, bool]:
    """Store the day's sales, replacing any earlier report for that day.

    `lines`: product code -> (qty, unit price cents, unit cost cents) at report time.
    Returns (report id, whether an earlier report was replaced).
    """
    report_id, replaced = _SALES.save(conn, account_id, day, now)
    _SALES_LINES.many(
        conn,
        [
            {"report_id": report_id, "product_code": code, "qty": qty, "price_cents": price,
             "cost_cents": cost}
            for code, (qty, price, cost) in lines.items()
        ],
    )
    return report_id, replaced


def upsert_stock(
    conn: Connection, account_id: int, day: date, lines: Mapping[str, int], *, now: datetime
) -> tuple[int, bool]:
    """Store the day's stock count (code -> qty), replacing an earlier count for that day."""
    count_id, replaced = _STOCK.save(conn, account_id, day, now)
    conn.execute(
        stock_lines.insert(),
        [{"count_id": count_id, "product_code": c, "qty": q} for c, q in lines.items()],
    )
    return count_id, replaced


def sales_lines_for(conn: Connection, account_id: int, day: date) -> dict[str, int]:
    q = (
        sa.select(sales_lines.c.product_code, sales_lines.c.qty)
        .join(sales_reports, sales_reports.c.id == sales_lines.c.report_id)
        .where(sales_reports.c.account_id == account_id, sales_reports.c.report_date == day)
    )
    return {r.product_code: r.qty for r in conn.execute(q)}


def stock_lines_for(conn: Connection, account_id: int, day: date) -> dict[str, int]:
    q = (
        sa.select(stock_lines.c.product_code, stock_lines.c.qty)
        .join(stock_counts, stock_counts.c.id == stock_lines.c.count_id)
        .where(stock_counts.c.account_id == account_id, stock_counts.c.count_date == day)
    )
    return {r.product_code: r.qty for r in conn.execute(q)}
