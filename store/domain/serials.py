"""Units sold by serial number / IMEI."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.models import serial_events


def seen(conn: Connection, serial: str) -> bool:
    q = sa.select(serial_events.c.id).where(serial_events.c.serial == serial).limit(1)
    return conn.execute(q).first() is not None


def record(
    conn: Connection,
    account_id: int,
    serial: str,
    *,
    is_imei: bool,
    now: datetime,
    mo_id: int | None = None,
) -> bool:
    """Record one reported serial; returns True when it was seen before (flagged duplicate,
    so it is not counted twice)."""
    duplicate = seen(conn, serial)
    conn.execute(
        serial_events.insert().values(
            account_id=account_id, serial=serial, is_imei=is_imei, duplicate=duplicate,
            mo_id=mo_id, at=now,
        )
    )
    return duplicate


def count_sold(conn: Connection, account_id: int) -> int:
    """Units counted for an account (duplicates excluded)."""
    q = sa.select(sa.func.count()).where(
        serial_events.c.account_id == account_id, sa.not_(serial_events.c.duplicate)
    )
    return int(conn.execute(q).scalar_one())
