"""Orders, their lines and their status history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store.fastsql import FastStatement
from store.models import ORDER_CHANGEABLE, order_history, order_lines, orders


@dataclass(frozen=True, slots=True)
class Line:
    product_code: str
    qty: int
    price_cents: int


def get(conn: Connection, order_id: int) -> Row | None:
    return conn.execute(sa.select(orders).where(orders.c.id == order_id)).first()


def latest(conn: Connection, account_id: int, *, exclude: tuple[str, ...] = ()) -> Row | None:
    """The account's newest order, skipping orders in `exclude` statuses."""
    q = sa.select(orders).where(orders.c.account_id == account_id)
    if exclude:
        q = q.where(orders.c.status.not_in(exclude))
    return conn.execute(q.order_by(orders.c.id.desc()).limit(1)).first()


def lines(conn: Connection, order_id: int) -> list[Line]:
    rows = conn.execute(
        sa.select(order_lines.c.product_code, order_lines.c.qty, order_lines.c.price_cents)
        .where(order_lines.c.order_id == order_id)
        .order_by(order_lines.c.id)
    )
    return [Line(r.product_code, r.qty, r.price_cents) for r in rows]


def total_of(order_lines_: list[Line]) -> int:
    return sum(line.qty * line.price_cents for line in order_lines_)


def is_changeable(order: Row) -> bool:
    return order.status in ORDER_CHANGEABLE


# An SMS order's statements, compiled once and run on the cursor (store/fastsql.py).
_HISTORY = FastStatement(order_history.insert(), keys=("order_id", "status", "at", "detail"))
_INSERT = FastStatement(orders.insert().returning(orders.c.id), keys=(
    "account_id", "status", "total_cents", "mo_id", "created_at", "updated_at"))
_LINES = FastStatement(order_lines.insert(), keys=(
    "order_id", "product_code", "qty", "price_cents"))


def add_history(
    conn: Connection, order_id: int, status: str, *, now: datetime, detail: str | None = None
) -> None:
    _HISTORY.run(conn, {"order_id": order_id, "status": status, "at": now, "detail": detail})


def history(conn: Connection, order_id: int) -> list[Row]:
    q = sa.select(order_history).where(order_history.c.order_id == order_id)
    return list(conn.execute(q.order_by(order_history.c.id)))


def create(
    conn: Connection,
    account_id: int,
    new_lines: list[Line],
    *,
    status: str,
    now: datetime,
    mo_id: int | None = None,
    detail: str | None = None,
) -> int:
    order_id = int(_INSERT.scalar(conn, {
        "account_id": account_id, "status": status, "total_cents": total_of(new_lines),
        "mo_id": mo_id, "created_at": now, "updated_at": now}))
    _LINES.many(
        conn,
        [
            {"order_id": order_id, "product_code": x.product_code, "qty": x.qty,
             "price_cents": x.price_cents}
            for x in new_lines
        ],
    )
    add_history(conn, order_id, status, now=now, detail=detail)
    return order_id


def modify(
    conn: Connection, order_id: int, changes: Mapping[str, Line | None], *, now: datetime
) -> list[Line]:
    """Apply line changes (None removes the line, a Line sets it) and recompute the total.

    Returns the order's lines afterwards; the caller decides the status (funds may change).
    """
    for code, line in changes.items():
        conn.execute(
            order_lines.delete().where(
                order_lines.c.order_id == order_id, order_lines.c.product_code == code
            )
        )
        if line is not None:
            conn.execute(
                order_lines.insert().values(
                    order_id=order_id, product_code=code, qty=line.qty,
                    price_cents=line.price_cents,
                )
            )
    result = lines(conn, order_id)
    conn.execute(
        orders.update()
        .where(orders.c.id == order_id)
        .values(total_cents=total_of(result), updated_at=now)
    )
    return result


def set_status(
    conn: Connection,
    order_id: int,
    status: str,
    *,
    now: datetime,
    detail: str | None = None,
    reject_reason: str | None = None,
) -> None:
    values: dict[str, object] = {"status": status, "updated_at": now}
    if reject_reason is not None:
        values["reject_reason"] = reject_reason
    conn.execute(orders.update().where(orders.c.id == order_id).values(**values))
    add_history(conn, order_id, status, now=now, detail=detail)


def cancel(conn: Connection, order_id: int, *, now: datetime, detail: str = "sms") -> None:
    set_status(conn, order_id, "cancelled", now=now, detail=detail)
