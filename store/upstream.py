"""Upstream applications that bind to our SMPP server: accounts, what we owe them.

Two things wait for an application's bind, store-and-forward, in order: delivery receipts
for the MTs it submitted (`upstream_outbox`) and MOs a rule forwarded to it (`forwards`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store.models import forwards, inbound_messages, outbound_messages
from store.models_upstream import upstream_accounts
from store.models_upstream import upstream_outbox as outbox

# Final states that produce a receipt for the submitting application.
FINAL_STATES = ("delivered", "failed", "expired", "rejected", "cancelled")


def create_account(conn: Connection, *, system_id: str, password_hash: str, now: datetime,
                   allowed_sources: str = "", tps: float = 0.0) -> int:
    return int(conn.execute(upstream_accounts.insert().values(
        system_id=system_id, password_hash=password_hash, allowed_sources=allowed_sources,
        tps=tps, enabled=True, created_at=now)).inserted_primary_key[0])


def account(conn: Connection, system_id: str) -> Row | None:
    return conn.execute(sa.select(upstream_accounts).where(
        upstream_accounts.c.system_id == system_id)).one_or_none()


def mark_submitted_by(conn: Connection, message_id: int, system_id: str) -> None:
    conn.execute(sa.update(outbound_messages).where(outbound_messages.c.id == message_id)
                 .values(upstream=system_id))


def owe_receipt(conn: Connection, message_id: int, *, now: datetime) -> int | None:
    """A message reached a final state: queue a receipt for the application that sent it."""
    msg = conn.execute(sa.select(
        outbound_messages.c.upstream, outbound_messages.c.status,
        outbound_messages.c.registered_delivery, outbound_messages.c.dest_addr,
        outbound_messages.c.source_addr, outbound_messages.c.created_at,
        outbound_messages.c.error_code, outbound_messages.c.text, outbound_messages.c.parts,
    ).where(outbound_messages.c.id == message_id)).one_or_none()
    if msg is None or msg.upstream is None or not msg.registered_delivery:
        return None
    if msg.status not in FINAL_STATES:
        return None
    if conn.execute(sa.select(outbox.c.id).where(outbox.c.message_id == message_id)).first():
        return None  # already owed (another part's receipt got here first)
    payload = {"message_id": str(message_id), "status": msg.status,
               "dest_addr": msg.dest_addr, "source_addr": msg.source_addr or "",
               "submitted_at": msg.created_at.isoformat(), "done_at": now.isoformat(),
               "error_code": msg.error_code or 0, "text": msg.text[:20], "parts": msg.parts}
    return int(conn.execute(outbox.insert().values(
        system_id=msg.upstream, kind="receipt", message_id=message_id,
        payload=json.dumps(payload),
        created_at=now, attempts=0)).inserted_primary_key[0])


def pending_for(conn: Connection, system_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """What waits for this application, oldest first: receipts and forwarded MOs."""
    receipts = conn.execute(
        sa.select(outbox.c.id, outbox.c.payload, outbox.c.created_at)
        .where(outbox.c.system_id == system_id, outbox.c.delivered_at.is_(None))
        .order_by(outbox.c.id).limit(limit)).all()
    mos = conn.execute(
        sa.select(forwards.c.id, forwards.c.created_at, inbound_messages.c.source_addr,
                  inbound_messages.c.dest_addr, inbound_messages.c.text)
        .join(inbound_messages, inbound_messages.c.id == forwards.c.mo_id)
        .where(forwards.c.target == system_id, forwards.c.status == "pending")
        .order_by(forwards.c.id).limit(limit)).all()
    items = [{"kind": "receipt", "id": r.id, "at": r.created_at, **json.loads(r.payload)}
             for r in receipts]
    items += [{"kind": "mo", "id": m.id, "at": m.created_at, "source_addr": m.source_addr,
               "dest_addr": m.dest_addr, "text": m.text} for m in mos]
    items.sort(key=lambda item: (item["at"], item["kind"], item["id"]))
    return items[:limit]


def mark_delivered(conn: Connection, item: dict[str, Any], *, now: datetime) -> None:
    if item["kind"] == "receipt":
        conn.execute(sa.update(outbox).where(outbox.c.id == item["id"])
                     .values(delivered_at=now, attempts=outbox.c.attempts + 1))
    else:
        conn.execute(sa.update(forwards).where(forwards.c.id == item["id"])
                     .values(status="delivered", delivered_at=now))


def targets_with_pending(conn: Connection) -> set[str]:
    rows = conn.execute(sa.select(outbox.c.system_id).where(outbox.c.delivered_at.is_(None))
                        .distinct()).scalars().all()
    rows += conn.execute(sa.select(forwards.c.target).where(forwards.c.status == "pending")
                         .distinct()).scalars().all()
    return set(rows)
