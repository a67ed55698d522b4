"""Sender-guard state shared by every instance on the database (migration 0011).

The decisions are commands/guards.py's; this module only keeps their state. Both calls run
inside the MO's own write transaction, so the guard and the MO's effect commit together.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.events import dialect_insert
from store.models import reply_guards, sender_guards


@dataclass(slots=True)
class SenderRow:
    accepted: list[float]  # times of accepted messages in the window, oldest first
    notified_at: float | None
    opt_out_notified_at: float | None


def lock_sender(conn: Connection, phone: str, now: float) -> SenderRow:
    """The phone's state, its row locked until this transaction ends.

    An upsert rather than SELECT ... FOR UPDATE: it locks the row even when it is new, so
    two instances taking a phone's first message at once still serialise on it.
    """
    g = sender_guards.c
    stmt = dialect_insert(conn, sender_guards).values(phone=phone, accepted="", seen_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["phone"], set_={"seen_at": now})
    row = conn.execute(stmt.returning(g.accepted, g.notified_at, g.opt_out_notified_at)).one()
    accepted = [float(x) for x in row.accepted.split()] if row.accepted else []
    return SenderRow(accepted, row.notified_at, row.opt_out_notified_at)


def save_sender(conn: Connection, phone: str, state: SenderRow) -> None:
    conn.execute(sa.update(sender_guards).where(sender_guards.c.phone == phone).values(
        accepted=" ".join(f"{t:.3f}" for t in state.accepted),
        notified_at=state.notified_at, opt_out_notified_at=state.opt_out_notified_at))


def claim_reply(conn: Connection, key: str, now: float, per_seconds: float) -> bool:
    """Record that the reply ``key`` goes now, unless it went less than ``per_seconds`` ago.

    One statement, atomic across instances: the losing writer waits for the row and then
    finds it fresh (PostgreSQL re-checks the WHERE on the committed row)."""
    stmt = dialect_insert(conn, reply_guards).values(key=key, allowed_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"allowed_at": now},
        where=reply_guards.c.allowed_at <= now - per_seconds)
    return conn.execute(stmt.returning(reply_guards.c.key)).first() is not None


def purge(conn: Connection, *, sender_idle_before: float, reply_before: float) -> int:
    """Drop state that can no longer change a decision (idle a whole window)."""
    a = conn.execute(sa.delete(sender_guards).where(sender_guards.c.seen_at < sender_idle_before))
    b = conn.execute(sa.delete(reply_guards).where(reply_guards.c.allowed_at < reply_before))
    return int(a.rowcount or 0) + int(b.rowcount or 0)
