"""Stored first answers of requests sent with an Idempotency-Key (gateway/api/idempotency.py).

Called inside the transaction that makes the change, so the answer commits with it: a retry
either finds the answer (the change happened) or nothing (it did not), never half.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.events import dialect_insert
from store.models import idempotency_keys as keys


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    fingerprint: str
    status_code: int
    response: str


def find(conn: Connection, scope: str, key: str, *, now: datetime) -> StoredAnswer | None:
    """The live answer stored under (scope, key); expired ones are deleted first."""
    conn.execute(sa.delete(keys).where(keys.c.expires_at <= now))
    row = conn.execute(sa.select(keys.c.fingerprint, keys.c.status_code, keys.c.response)
                       .where(keys.c.scope == scope, keys.c.key == key)).one_or_none()
    return StoredAnswer(row.fingerprint, row.status_code, row.response) if row else None


def save(conn: Connection, scope: str, key: str, *, fingerprint: str, status_code: int,
         response: str, now: datetime, ttl: timedelta) -> bool:
    """Store the first answer; False when another transaction stored one first (the caller
    must then roll back its change: see KeyInUse)."""
    done = conn.execute(
        dialect_insert(conn, keys).values(
            scope=scope, key=key, fingerprint=fingerprint, status_code=status_code,
            response=response, created_at=now, expires_at=now + ttl)
        .on_conflict_do_nothing(index_elements=["scope", "key"])
    ).rowcount
    return bool(done)
