"""Leases: time-limited ownership of a singleton duty across instances (migration 0011).

A holder renews its lease well before it expires; one that dies stops renewing and the lease
lapses by expiry, so another instance takes the duty over. "instance:<name>" is each
instance's heartbeat: while it is current, that instance's claimed ('sending') rows are its
own; once it lapses, any live instance puts them back in the queue (store.outbound).

Times are epoch seconds from the caller's clock, so tests drive them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.events import dialect_insert
from store.models import leases


def acquire(conn: Connection, name: str, holder: str, *, now: float, ttl: float) -> bool:
    """Take or renew ``name`` for ``ttl`` seconds; False while someone else holds it."""
    stmt = dialect_insert(conn, leases).values(name=name, holder=holder, expires_at=now + ttl)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"], set_={"holder": holder, "expires_at": now + ttl},
        where=sa.or_(leases.c.holder == holder, leases.c.expires_at <= now))
    return conn.execute(stmt.returning(leases.c.name)).first() is not None


def release(conn: Connection, name: str, holder: str) -> None:
    conn.execute(sa.delete(leases).where(leases.c.name == name, leases.c.holder == holder))


def lapsed(conn: Connection, prefix: str, *, now: float) -> list[str]:
    """Names starting with ``prefix`` whose lease expired (their holder stopped renewing)."""
    return list(conn.execute(sa.select(leases.c.name).where(
        leases.c.name.startswith(prefix, autoescape=True), leases.c.expires_at <= now)
        .order_by(leases.c.name)).scalars())


def holder(conn: Connection, name: str) -> tuple[str, float] | None:
    row = conn.execute(sa.select(leases.c.holder, leases.c.expires_at)
                       .where(leases.c.name == name)).first()
    return (row.holder, row.expires_at) if row else None
