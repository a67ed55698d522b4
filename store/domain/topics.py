"""Topics, subscriptions and opt-outs."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store.events import dialect_insert
from store.models import opt_outs, subscriptions, topics


def by_code(conn: Connection, code: str) -> Row | None:
    return conn.execute(sa.select(topics).where(topics.c.code == code.upper())).first()


def subscribe(
    conn: Connection,
    phone: str,
    topic_id: int,
    *,
    window: tuple[int, int] | None,
    now: datetime,
) -> None:
    """Subscribe (or change the window of an existing subscription) and clear an opt-out."""
    start, end = window if window is not None else (None, None)
    stmt = dialect_insert(conn, subscriptions).values(
        phone=phone, topic_id=topic_id, window_start=start, window_end=end, created_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["phone", "topic_id"],
            set_={"window_start": start, "window_end": end},
        )
    )
    clear_opt_out(conn, phone)


def unsubscribe(conn: Connection, phone: str, topic_id: int) -> bool:
    """Remove one subscription; True when there was one."""
    result = conn.execute(
        subscriptions.delete().where(
            subscriptions.c.phone == phone, subscriptions.c.topic_id == topic_id
        )
    )
    return result.rowcount > 0


def unsubscribe_all(conn: Connection, phone: str, *, now: datetime) -> int:
    """Remove every subscription and record the opt-out (broadcasts honour it)."""
    n = conn.execute(subscriptions.delete().where(subscriptions.c.phone == phone)).rowcount
    stmt = dialect_insert(conn, opt_outs).values(phone=phone, at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["phone"], set_={"at": now}))
    return int(n)


def clear_opt_out(conn: Connection, phone: str) -> None:
    conn.execute(opt_outs.delete().where(opt_outs.c.phone == phone))


def is_opted_out(conn: Connection, phone: str) -> bool:
    q = sa.select(opt_outs.c.id).where(opt_outs.c.phone == phone)
    return conn.execute(q).first() is not None


def subscription(conn: Connection, phone: str, topic_id: int) -> Row | None:
    q = sa.select(subscriptions).where(
        subscriptions.c.phone == phone, subscriptions.c.topic_id == topic_id
    )
    return conn.execute(q).first()


def subscribers(conn: Connection, topic_id: int) -> list[Row]:
    """A topic's subscribers, opted-out numbers excluded (for broadcasts)."""
    q = (
        sa.select(subscriptions)
        .where(subscriptions.c.topic_id == topic_id)
        .where(~sa.exists().where(opt_outs.c.phone == subscriptions.c.phone))
        .order_by(subscriptions.c.id)
    )
    return list(conn.execute(q))
