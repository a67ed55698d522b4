"""Leases: time-limited ownership of a singleton duty across instances (migration 0011).

A holder renews its lease well before it expires; one that dies stops renewing and the lease
lapses by expiry, so another instance takes the duty over. "instance:<name>" is each
instance's heartbeat: while it is current, that instance's claimed ('sending') rows are its
own; once it lapses, any live instance puts them back in the queue (store.outbound).

Times are epoch seconds from the caller's clock, so tests drive them.
"""

from __future__ import annotations

import hashlib

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


def release(conn: Connection, name: str, holder: str, *, now: float) -> None:
    """Let the lease lapse now (kept, not deleted: whoever watches lapsed leases still sees
    it, e.g. to take over what the holder left behind)."""
    conn.execute(sa.update(leases).where(leases.c.name == name, leases.c.holder == holder)
                 .values(expires_at=now))


def lapsed(conn: Connection, prefix: str, *, now: float) -> list[str]:
    """Names starting with ``prefix`` whose lease expired (their holder stopped renewing)."""
    return list(conn.execute(sa.select(leases.c.name).where(
        leases.c.name.startswith(prefix, autoescape=True), leases.c.expires_at <= now)
        .order_by(leases.c.name)).scalars())


def holder(conn: Connection, name: str) -> tuple[str, float] | None:
    row = conn.execute(sa.select(leases.c.holder, leases.c.expires_at)
                       .where(leases.c.name == name)).first()
    return (row.holder, row.expires_at) if row else None


def try_xact_lock(conn: Connection, name: str) -> bool:
    """Take the transaction-scoped lock ``name`` without waiting; False when another
    transaction (of any instance) holds it. Released at commit or rollback, and by the
    server when the holder's connection dies. SQLite has one writer: always True."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"),
                             {"k": lock_key(name)}).scalar())


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for an advisory lock name (same on every instance)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def drop_lapsed(conn: Connection, name: str, *, now: float) -> None:
    """Forget a lease whose holder is gone (not one renewed meanwhile)."""
    conn.execute(sa.delete(leases).where(leases.c.name == name, leases.c.expires_at <= now))
