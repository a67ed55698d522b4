"""Runtime key-value settings (e.g. the rules version counter)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.events import dialect_insert
from store.models import settings


def get(conn: Connection, key: str, default: str | None = None) -> str | None:
    value = conn.execute(sa.select(settings.c.value).where(settings.c.key == key)).scalar()
    return default if value is None else value


def put(conn: Connection, key: str, value: str) -> None:
    stmt = dialect_insert(conn, settings).values(key=key, value=value)
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def bump(conn: Connection, key: str) -> int:
    """Increment an integer setting (created at 1); returns the new value."""
    value = int(get(conn, key, "0") or 0) + 1
    put(conn, key, str(value))
    return value
