"""Status history rows (message_events), shared by the repositories.

Inside the group-commit writer's transaction the rows are not inserted one by one: they
are buffered on the connection and written with ONE executemany just before the commit
(`begin_deferred` / `flush_deferred`, called by store/writer.py). An MO's round trip records
about five events; one INSERT each was the single most frequent statement on the hot path.
The rows still commit (or roll back) with the transaction that recorded them, in the order
they were recorded. Elsewhere (store.run, tests) they are inserted at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from store.fastsql import FastStatement
from store.models import message_events

Direction = Literal["in", "out"]

# conn.info key of the buffer of a transaction whose events are deferred to its commit.
_DEFERRED = "smsgw_deferred_events"
# Compiled once, run on the cursor (store/fastsql.py): the hot path's most frequent rows.
_INSERT = FastStatement(message_events.insert(),
                        keys=("direction", "message_id", "status", "at", "detail"))


def begin_deferred(conn: Connection) -> None:
    """From now on this connection's events wait for `flush_deferred` (the writer)."""
    conn.info[_DEFERRED] = []


def flush_deferred(conn: Connection) -> int:
    """Insert the buffered events (one executemany) and stop deferring; returns how many."""
    rows: list[dict[str, Any]] | None = conn.info.pop(_DEFERRED, None)
    if rows:
        _INSERT.many(conn, rows)
    return len(rows or ())


def discard_deferred(conn: Connection) -> None:
    """The transaction rolled back: its buffered events go with it (and the pooled DBAPI
    connection must not carry a stale buffer to its next user)."""
    with contextlib.suppress(Exception):  # an invalidated connection has nothing to keep
        conn.info.pop(_DEFERRED, None)


def _add(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    buffer: list[dict[str, Any]] | None = conn.info.get(_DEFERRED)
    if buffer is not None:
        buffer.extend(rows)
    else:
        _INSERT.many(conn, rows)


def record_event(
    conn: Connection,
    direction: Direction,
    message_id: int,
    status: str,
    *,
    now: datetime,
    detail: str | None = None,
) -> None:
    _add(conn, [{"direction": direction, "message_id": message_id, "status": status,
                 "at": now, "detail": detail}])


def record_events(
    conn: Connection,
    direction: Direction,
    message_ids: Iterable[int],
    status: str,
    *,
    now: datetime,
    detail: str | None = None,
) -> None:
    """Many messages changing to the same status (claims, requeues)."""
    _add(conn, [
        {"direction": direction, "message_id": i, "status": status, "at": now, "detail": detail}
        for i in message_ids
    ])


def record_event_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Events with their own status and detail each (direction, message_id, status, at,
    detail), e.g. a batch of receipts."""
    _add(conn, rows)


def dialect_insert(conn: Connection, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    """INSERT supporting ON CONFLICT for the connection's dialect (both spell it the same)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported dialect {conn.dialect.name}")
