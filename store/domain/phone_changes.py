"""Number changes (CHG): a code sent to the new number, confirmed by CFM from it."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store.models import opt_outs, outbound_messages, phone_changes, phone_tags, subscriptions

VALIDITY = timedelta(minutes=10)
# Wrong CFM codes a pending change tolerates before it is expired (10^6 codes, 10 minutes).
MAX_ATTEMPTS = 5


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def create(conn: Connection, account_id: int, new_phone: str, *, now: datetime) -> tuple[int, str]:
    """Start a change (expiring any earlier pending one of the account): (id, code)."""
    conn.execute(
        phone_changes.update()
        .where(phone_changes.c.account_id == account_id, phone_changes.c.status == "pending")
        .values(status="expired")
    )
    code = new_code()
    change_id = conn.execute(
        phone_changes.insert().values(
            account_id=account_id, new_phone=new_phone, code=code, expires_at=now + VALIDITY,
            status="pending", created_at=now,
        )
    ).inserted_primary_key[0]
    return int(change_id), code


def pending_for(conn: Connection, new_phone: str) -> Row | None:
    """The newest pending change towards `new_phone`."""
    q = (
        sa.select(phone_changes)
        .where(phone_changes.c.new_phone == new_phone, phone_changes.c.status == "pending")
        .order_by(phone_changes.c.id.desc())
        .limit(1)
    )
    return conn.execute(q).first()


def set_status(conn: Connection, change_id: int, status: str) -> None:
    conn.execute(
        phone_changes.update().where(phone_changes.c.id == change_id).values(status=status)
    )
    if status != "pending":
        _scrub_code(conn, change_id)


_MASKED_CODE = "******"


def _scrub_code(conn: Connection, change_id: int) -> None:
    """A change that is over needs its code no more: mask it in the change and in the
    notice that carried it to the new number, so no code stays in clear (issue 9)."""
    row = conn.execute(sa.select(phone_changes.c.code, phone_changes.c.new_phone,
                                 phone_changes.c.created_at)
                       .where(phone_changes.c.id == change_id)).one_or_none()
    if row is None or row.code == _MASKED_CODE:
        return
    conn.execute(phone_changes.update().where(phone_changes.c.id == change_id)
                 .values(code=_MASKED_CODE))
    mt = outbound_messages
    conn.execute(mt.update().where(
        mt.c.dest_addr == row.new_phone, mt.c.created_at >= row.created_at,
        mt.c.text.contains(row.code, autoescape=True),
    ).values(text=sa.func.replace(mt.c.text, row.code, _MASKED_CODE)))


def count_wrong_code(conn: Connection, change_id: int) -> int:
    """Count a wrong code; expires the change at MAX_ATTEMPTS. Returns the attempts so far."""
    conn.execute(
        phone_changes.update()
        .where(phone_changes.c.id == change_id)
        .values(attempts=phone_changes.c.attempts + 1)
    )
    attempts = int(
        conn.execute(
            sa.select(phone_changes.c.attempts).where(phone_changes.c.id == change_id)
        ).scalar_one()
    )
    if attempts >= MAX_ATTEMPTS:
        set_status(conn, change_id, "expired")
    return attempts


def confirm(conn: Connection, change_id: int) -> None:
    set_status(conn, change_id, "confirmed")


def move_phone_rows(conn: Connection, old_phone: str, new_phone: str) -> dict[str, int]:
    """Move what is keyed by the account's old number to its new one (a confirmed CHG):
    topic subscriptions (with their windows), the opt-out, rule tags. Returns the rows moved
    per table.

    Everything else about the account (PIN lockout, notice window, orders) hangs off the
    account id and moves with `accounts.bind_phone`. Where the new number already has the same
    row (it subscribed to the topic, or said STOP, before the move), the new number's row is
    kept and the old duplicate is dropped: the person is still subscribed (or opted out)
    once, never twice. An opt-out moves too: the person asked not to be texted.
    """
    moved = {}
    for table, key in ((subscriptions, subscriptions.c.topic_id), (phone_tags, phone_tags.c.tag)):
        have = sa.select(key).where(table.c.phone == new_phone).scalar_subquery()
        conn.execute(table.delete().where(table.c.phone == old_phone, key.in_(have)))
        moved[table.name] = conn.execute(
            table.update().where(table.c.phone == old_phone).values(phone=new_phone)).rowcount
    new_opted = conn.execute(sa.select(opt_outs.c.id).where(opt_outs.c.phone == new_phone)).first()
    if new_opted is not None:
        conn.execute(opt_outs.delete().where(opt_outs.c.phone == old_phone))
        moved[opt_outs.name] = 0
    else:
        moved[opt_outs.name] = conn.execute(
            opt_outs.update().where(opt_outs.c.phone == old_phone).values(phone=new_phone)
        ).rowcount
    return moved
