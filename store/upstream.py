"""Upstream applications that bind to our SMPP server: accounts, what we owe them.

Two things wait for an application's bind, store-and-forward, in order: delivery receipts
for the MTs it submitted (`upstream_outbox`, one per message_id it got: a concatenated
submit's parts each have their own, see store/upstream_concat.py) and MOs a rule forwarded
to it (`forwards`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store import upstream_concat
from store.fastsql import FastStatement
from store.models import forwards, inbound_messages, outbound_messages
from store.models_upstream import upstream_accounts
from store.models_upstream import upstream_concat_groups as concat_groups
from store.models_upstream import upstream_concat_parts as concat_parts
from store.models_upstream import upstream_outbox as outbox

# Final states that produce a receipt for the submitting application.
FINAL_STATES = ("delivered", "failed", "expired", "rejected", "cancelled", "unknown")


def create_account(conn: Connection, *, system_id: str, password_hash: str, now: datetime,
                   allowed_sources: str = "", tps: float = 0.0) -> int:
    return int(conn.execute(upstream_accounts.insert().values(
        system_id=system_id, password_hash=password_hash, allowed_sources=allowed_sources,
        tps=tps, enabled=True, created_at=now)).inserted_primary_key[0])


def account(conn: Connection, system_id: str) -> Row | None:
    return conn.execute(sa.select(upstream_accounts).where(
        upstream_accounts.c.system_id == system_id)).one_or_none()


def owe_receipt(conn: Connection, message_id: int, *, now: datetime) -> int | None:
    """A message reached a final state: queue a receipt for the application that sent it.

    One receipt per message_id the application got: the MT's own id, or, for an MT joined
    from a concatenated submit, one per part that asked for a receipt, each carrying that
    part's id. Returns the number of receipts newly owed (None when none)."""
    from store.webhooks import owe_message_final  # every final state passes here (issue 12)

    owe_message_final(conn, message_id, now=now)
    msg = _FINAL_MESSAGE.one_or_none(conn, {"b_id": message_id})
    if msg is None or msg.upstream is None or not msg.registered_delivery:
        return None
    if msg.status not in FINAL_STATES:
        return None
    submitted_parts = _SUBMITTED_PARTS.all(conn, {"b_id": message_id})
    common = {"system_id": msg.upstream, "status": msg.status, "dest_addr": msg.dest_addr,
              "source_addr": msg.source_addr or "", "now": now,
              "error_code": msg.error_code or 0, "message_id": message_id}
    if not submitted_parts:
        owed = owe_part_receipt(conn, receipt_for=str(message_id), text=msg.text,
                                submitted_at=msg.created_at, parts=msg.parts, **common)
        return None if owed is None else 1
    count = 0
    for p in submitted_parts:
        if p.registered_delivery and owe_part_receipt(
                conn, receipt_for=upstream_concat.part_message_id(p.group_id, p.seq),
                text=p.text, submitted_at=p.received_at, **common) is not None:
            count += 1
    return count or None


# Every receipt for an application's MT runs these (store/fastsql.py: compiled once).
_FINAL_MESSAGE = FastStatement(sa.select(
    outbound_messages.c.upstream, outbound_messages.c.status,
    outbound_messages.c.registered_delivery, outbound_messages.c.dest_addr,
    outbound_messages.c.source_addr, outbound_messages.c.created_at,
    outbound_messages.c.error_code, outbound_messages.c.text, outbound_messages.c.parts,
).where(outbound_messages.c.id == sa.bindparam("b_id")))
_SUBMITTED_PARTS = FastStatement(
    sa.select(concat_parts.c.group_id, concat_parts.c.seq, concat_parts.c.text,
              concat_parts.c.registered_delivery, concat_parts.c.received_at)
    .join(concat_groups, concat_groups.c.id == concat_parts.c.group_id)
    .where(concat_groups.c.message_id == sa.bindparam("b_id")).order_by(concat_parts.c.seq))
_OWED_FOR = FastStatement(sa.select(outbox.c.id).where(
    outbox.c.receipt_for == sa.bindparam("b_for")).limit(1))
_OWE = FastStatement(outbox.insert().returning(outbox.c.id), keys=(
    "system_id", "kind", "message_id", "receipt_for", "payload", "created_at", "attempts"))

# The few messages of a batch that owe someone news of their final state: an application
# that submitted them over SMPP, or a callback_url (store/webhooks.py).
# Every receipt batch asks (store/fastsql.py: compiled once per IN-list length).
_FROM_UPSTREAM = FastStatement(sa.select(outbound_messages.c.id).where(
    outbound_messages.c.id.in_(sa.bindparam("ids", expanding=True)),
    sa.or_(outbound_messages.c.upstream.is_not(None),
           outbound_messages.c.callback_url.is_not(None))))


def owe_receipts(conn: Connection, message_ids: list[int], *, now: datetime) -> list[int]:
    """`owe_receipt` for many messages: one look-up finds the few an application sent or a
    callback waits for (a receipt batch is mostly the gateway's own MTs). Returns the ids of
    those now owing an application a receipt."""
    if not message_ids:
        return []
    return [int(r.id) for r in _FROM_UPSTREAM.all(conn, {"ids": sorted(set(message_ids))})
            if owe_receipt(conn, int(r.id), now=now) is not None]


def owe_part_receipt(conn: Connection, *, system_id: str, receipt_for: str, status: str,
                     dest_addr: str, source_addr: str, submitted_at: datetime, now: datetime,
                     text: str, error_code: int = 0, error_text: str | None = None,
                     message_id: int | None = None, parts: int = 1) -> int | None:
    """Owe ``system_id`` one receipt for the id ``receipt_for`` it got; None if already owed
    (another part's receipt of the same MT got here first)."""
    if _OWED_FOR.all(conn, {"b_for": receipt_for}):
        return None
    payload = {"message_id": receipt_for, "status": status, "dest_addr": dest_addr,
               "source_addr": source_addr, "submitted_at": submitted_at.isoformat(),
               "done_at": now.isoformat(), "error_code": error_code, "text": text[:20],
               "parts": parts}
    if error_text:
        payload["error_text"] = error_text
    return int(_OWE.scalar(conn, {
        "system_id": system_id, "kind": "receipt", "message_id": message_id,
        "receipt_for": receipt_for, "payload": json.dumps(payload), "created_at": now,
        "attempts": 0}))


# The forwarding loop runs these on every wake-up (store/fastsql.py: compiled once).
_PENDING_RECEIPTS = FastStatement(
    sa.select(outbox.c.id, outbox.c.payload, outbox.c.created_at)
    .where(outbox.c.system_id == sa.bindparam("b_system_id"), outbox.c.delivered_at.is_(None))
    .order_by(outbox.c.id).limit(sa.bindparam("b_limit", type_=sa.Integer)))
_PENDING_MOS = FastStatement(
    sa.select(forwards.c.id, forwards.c.created_at, inbound_messages.c.source_addr,
              inbound_messages.c.dest_addr, inbound_messages.c.text)
    .join(inbound_messages, inbound_messages.c.id == forwards.c.mo_id)
    .where(forwards.c.target == sa.bindparam("b_system_id"), forwards.c.status == "pending")
    .order_by(forwards.c.id).limit(sa.bindparam("b_limit", type_=sa.Integer)))
_RECEIPT_DELIVERED = FastStatement(
    sa.update(outbox).where(outbox.c.id == sa.bindparam("b_id"))
    .values(delivered_at=sa.bindparam("b_now", type_=outbox.c.delivered_at.type),
            attempts=outbox.c.attempts + 1))
_MO_DELIVERED = FastStatement(
    sa.update(forwards).where(forwards.c.id == sa.bindparam("b_id"))
    .values(status="delivered",
            delivered_at=sa.bindparam("b_now", type_=forwards.c.delivered_at.type)))
_RECEIPT_TARGETS = FastStatement(
    sa.select(outbox.c.system_id).where(outbox.c.delivered_at.is_(None)).distinct())
_MO_TARGETS = FastStatement(
    sa.select(forwards.c.target).where(forwards.c.status == "pending").distinct())


def pending_for(conn: Connection, system_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """What waits for this application, oldest first: receipts and forwarded MOs."""
    params = {"b_system_id": system_id, "b_limit": limit}
    items = [{"kind": "receipt", "id": r.id, "at": r.created_at, **json.loads(r.payload)}
             for r in _PENDING_RECEIPTS.all(conn, params)]
    items += [{"kind": "mo", "id": m.id, "at": m.created_at, "source_addr": m.source_addr,
               "dest_addr": m.dest_addr, "text": m.text} for m in _PENDING_MOS.all(conn, params)]
    items.sort(key=lambda item: (item["at"], item["kind"], item["id"]))
    return items[:limit]


def mark_delivered(conn: Connection, items: Sequence[dict[str, Any]], *,
                   now: datetime) -> None:
    """Receipts and forwarded MOs the application accepted: one executemany per kind."""
    for stmt, kind in ((_RECEIPT_DELIVERED, "receipt"), (_MO_DELIVERED, "mo")):
        done = [{"b_id": item["id"], "b_now": now} for item in items if item["kind"] == kind]
        if done:
            stmt.many(conn, done)


def targets_with_pending(conn: Connection) -> set[str]:
    return ({r[0] for r in _RECEIPT_TARGETS.all(conn)}
            | {r[0] for r in _MO_TARGETS.all(conn)})
