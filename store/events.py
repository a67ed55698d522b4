"""Status history rows (message_events), shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from store.models import message_events

Direction = Literal["in", "out"]


def record_event(
    conn: Connection,
    direction: Direction,
    message_id: int,
    status: str,
    *,
    now: datetime,
    detail: str | None = None,
) -> None:
    conn.execute(
        message_events.insert().values(
            direction=direction, message_id=message_id, status=status, at=now, detail=detail
        )
    )


def record_events(
    conn: Connection,
    direction: Direction,
    message_ids: Iterable[int],
    status: str,
    *,
    now: datetime,
    detail: str | None = None,
) -> None:
    """One executemany for many messages changing to the same status (claims, requeues)."""
    rows = [
        {"direction": direction, "message_id": i, "status": status, "at": now, "detail": detail}
        for i in message_ids
    ]
    if rows:
        conn.execute(message_events.insert(), rows)


def dialect_insert(conn: Connection, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    """INSERT supporting ON CONFLICT for the connection's dialect (both spell it the same)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported dialect {conn.dialect.name}")
