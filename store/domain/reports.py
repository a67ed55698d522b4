"""Daily sales reports and stock counts: one per account and date; a resend replaces it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.events import dialect_insert
from store.models import sales_lines, sales_reports, stock_counts, stock_lines


def _upsert_header(
    conn: Connection, table: sa.Table, date_col: str, account_id: int, day: date, now: datetime
) -> tuple[int, bool]:
    """(header id, replaced) — one statement, safe against a concurrent first insert."""
    existing = conn.execute(
        sa.select(table.c.id).where(table.c.account_id == account_id, table.c[date_col] == day)
    ).scalar()
    stmt = dialect_insert(conn, table).values(
        account_id=account_id, created_at=now, updated_at=now, **{date_col: day}
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id", date_col], set_={"updated_at": now}
    ).returning(table.c.id)
    return int(conn.execute(stmt).scalar_one()), existing is not None


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
    report_id, replaced = _upsert_header(conn, sales_reports, "report_date", account_id, day, now)
    conn.execute(sales_lines.delete().where(sales_lines.c.report_id == report_id))
    conn.execute(
        sales_lines.insert(),
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
    count_id, replaced = _upsert_header(conn, stock_counts, "count_date", account_id, day, now)
    conn.execute(stock_lines.delete().where(stock_lines.c.count_id == count_id))
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
