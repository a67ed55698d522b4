"""Inbound (MO) messages: persisted before deliver_sm_resp, processed exactly once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store.events import dialect_insert, record_event
from store.models import inbound_messages as mo


def insert_mo(
    conn: Connection,
    *,
    connection: str,
    dedup_key: str,
    source_addr: str,
    dest_addr: str,
    text: str,
    data_coding: int,
    esm_class: int,
    short_message: bytes,
    now: datetime,
    concat: tuple[int, int, int] | None = None,
) -> tuple[int, bool]:
    """Store an MO; returns (id, is_new). A redelivery returns the first copy's id and False.

    ON CONFLICT DO NOTHING rather than catching IntegrityError: a failed INSERT would abort
    the surrounding (group-committed) transaction on PostgreSQL.
    """
    stmt = (
        dialect_insert(conn, mo)
        .values(
            connection=connection,
            dedup_key=dedup_key,
            source_addr=source_addr,
            dest_addr=dest_addr,
            text=text,
            data_coding=data_coding,
            esm_class=esm_class,
            short_message=short_message,
            received_at=now,
            status="received",
            # (reference, total, sequence) of a concatenated part, so that parts waiting for
            # their siblings can be re-held after a restart.
            concat_ref=concat[0] if concat else None,
            concat_total=concat[1] if concat else None,
            concat_seq=concat[2] if concat else None,
        )
        .on_conflict_do_nothing(index_elements=["connection", "dedup_key"])
        .returning(mo.c.id)
    )
    new_id = conn.execute(stmt).scalar_one_or_none()
    if new_id is not None:
        record_event(conn, "in", new_id, "received", now=now)
        return new_id, True
    existing = find_mo(conn, connection=connection, dedup_key=dedup_key)
    assert existing is not None  # the conflict that skipped our insert is this row
    return existing, False


def find_mo(conn: Connection, *, connection: str, dedup_key: str) -> int | None:
    """The id of an MO already stored under this key (a redelivery check)."""
    return conn.execute(
        sa.select(mo.c.id).where(mo.c.connection == connection, mo.c.dedup_key == dedup_key)
    ).scalar_one_or_none()


def mark_mo_processed(conn: Connection, id: int, *, command: str | None, now: datetime) -> None:
    conn.execute(
        sa.update(mo)
        .where(mo.c.id == id)
        .values(status="processed", processed_at=now, command=command, error=None)
    )
    record_event(conn, "in", id, "processed", now=now, detail=command)


def mark_mo_failed(conn: Connection, id: int, *, error: str, now: datetime) -> None:
    conn.execute(
        sa.update(mo).where(mo.c.id == id).values(status="failed", processed_at=now, error=error)
    )
    record_event(conn, "in", id, "failed", now=now, detail=error)


def unprocessed_mos(conn: Connection, limit: int) -> list[Row]:
    """MOs stored but not yet processed (e.g. after a crash), oldest first."""
    return list(
        conn.execute(
            sa.select(mo).where(mo.c.status == "received").order_by(mo.c.id).limit(limit)
        ).all()
    )


def get_mo(conn: Connection, id: int) -> Row | None:
    return conn.execute(sa.select(mo).where(mo.c.id == id)).one_or_none()
