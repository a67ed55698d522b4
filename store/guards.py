"""Sender-guard state shared by every instance on the database (migration 0011).

The decisions are commands/guards.py's; this module only keeps their state. Both calls run
inside the MO's own write transaction, so the guard and the MO's effect commit together.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.events import dialect_insert
from store.fastsql import FastStatement
from store.models import reply_guards, sender_guards


@dataclass(slots=True)
class SenderRow:
    accepted: list[float]  # times of accepted messages in the window, oldest first
    notified_at: float | None
    opt_out_notified_at: float | None


def _build_lock(conn: Connection) -> sa.ClauseElement:
    g = sender_guards.c
    ins = dialect_insert(conn, sender_guards).values(
        phone=sa.bindparam("b_phone"), accepted="", seen_at=sa.bindparam("b_now"))
    return ins.on_conflict_do_update(
        index_elements=["phone"], set_={"seen_at": ins.excluded.seen_at},
    ).returning(g.accepted, g.notified_at, g.opt_out_notified_at)


def _build_claim_reply(conn: Connection) -> sa.ClauseElement:
    ins = dialect_insert(conn, reply_guards).values(key=sa.bindparam("b_key"),
                                                     allowed_at=sa.bindparam("b_now"))
    return ins.on_conflict_do_update(
        index_elements=["key"], set_={"allowed_at": ins.excluded.allowed_at},
        where=reply_guards.c.allowed_at <= sa.bindparam("b_before"),
    ).returning(reply_guards.c.key)


# Two or three statements per MO: compiled once, run on the cursor (store/fastsql.py).
_LOCK = FastStatement(_build_lock)
_SAVE = FastStatement(sa.update(sender_guards).where(
    sender_guards.c.phone == sa.bindparam("b_phone")).values(
    accepted=sa.bindparam("b_accepted"), notified_at=sa.bindparam("b_notified"),
    opt_out_notified_at=sa.bindparam("b_opt_out")))
_CLAIM_REPLY = FastStatement(_build_claim_reply)


def lock_sender(conn: Connection, phone: str, now: float) -> SenderRow:
    """The phone's state, its row locked until this transaction ends.

    An upsert rather than SELECT ... FOR UPDATE: it locks the row even when it is new, so
    two instances taking a phone's first message at once still serialise on it.
    """
    row = _LOCK.all(conn, {"b_phone": phone, "b_now": now})[0]
    accepted = [float(x) for x in row.accepted.split()] if row.accepted else []
    return SenderRow(accepted, row.notified_at, row.opt_out_notified_at)


def save_sender(conn: Connection, phone: str, state: SenderRow) -> None:
    _SAVE.run(conn, {"b_phone": phone,
                     "b_accepted": " ".join(f"{t:.3f}" for t in state.accepted),
                     "b_notified": state.notified_at, "b_opt_out": state.opt_out_notified_at})


def claim_reply(conn: Connection, key: str, now: float, per_seconds: float) -> bool:
    """Record that the reply ``key`` goes now, unless it went less than ``per_seconds`` ago.

    One statement, atomic across instances: the losing writer waits for the row and then
    finds it fresh (PostgreSQL re-checks the WHERE on the committed row)."""
    return bool(_CLAIM_REPLY.all(conn, {"b_key": key, "b_now": now,
                                        "b_before": now - per_seconds}))


def purge(conn: Connection, *, sender_idle_before: float, reply_before: float) -> int:
    """Drop state that can no longer change a decision (idle a whole window)."""
    a = conn.execute(sa.delete(sender_guards).where(sender_guards.c.seen_at < sender_idle_before))
    b = conn.execute(sa.delete(reply_guards).where(reply_guards.c.allowed_at < reply_before))
    return int(a.rowcount or 0) + int(b.rowcount or 0)
