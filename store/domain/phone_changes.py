"""Number changes (CHG): a code sent to the new number, confirmed by CFM from it."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store.models import phone_changes

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
