"""The webhook outbox: callbacks owed, written in the transaction of what caused them.

Exactly-once intent, at-least-once delivery. Every function that *owes* a callback runs
inside the caller's transaction (the MO's processing, the receipt that made a message final,
the event), so a callback exists if and only if its cause committed. Each row carries an
idempotency key that is unique: owing the same thing twice (a redelivered receipt, a replayed
event) adds nothing. The worker (gateway/webhooks/worker.py) claims due rows with a lease,
posts them, and records the outcome; a row whose lease ran out (its worker died) is claimed
again, so the receiver may see a callback twice and dedups on the Idempotency-Key header.

A Kannel-style reply (subscription ``reply``) is enqueued by ``mark_delivered`` in the same
transaction that marks the row delivered, guarded by the row's state: however many times the
receiver is called, the reply SMS is queued once.
"""

from __future__ import annotations

import json
import logging
import secrets as _secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store import outbound
from store.events import dialect_insert
from store.fastsql import FastStatement
from store.models import OUTBOUND_FINAL, PRIORITY_REPLY, WEBHOOK_STATUSES, settings
from store.models import api_keys as keys
from store.models import inbound_messages as mo
from store.models import outbound_messages as msg
from store.models import webhook_deliveries as dl
from store.models import webhook_subscriptions as subs

log = logging.getLogger("smsgw.webhooks")

# A Kannel reply longer than this is cut (it is an SMS: about six parts at most).
MAX_REPLY = 1000
DEFAULT_SECRET_KEY = "webhook_default_secret"


def new_secret() -> str:
    return _secrets.token_hex(32)


# -- owing (inside the cause's transaction) -----------------------------------------------------

def owe(conn: Connection, *, key: str, event: str, url: str, body: Mapping[str, Any],
        now: datetime, subscription_id: int | None = None, form: str = "json",
        mo_id: int | None = None, reply_from: str | None = None) -> int | None:
    """Add one callback to the outbox; None when one with this key is already there."""
    payload = {"event": event, "idempotency_key": key, **body}
    ins = dialect_insert(conn, dl).values(
        idempotency_key=key[:128], event=event[:64], subscription_id=subscription_id, url=url,
        form=form, body=json.dumps(payload, default=str, ensure_ascii=False), mo_id=mo_id,
        reply_from=reply_from, status="pending", attempts=0, next_attempt_at=now,
        created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(dl.c.id)
    new_id = conn.execute(ins).scalar()
    return None if new_id is None else int(new_id)


def owe_mo(conn: Connection, mo_id: int, subscription: str, *, phone: str, text: str,
           now: datetime) -> int | None:
    """A 'webhook' rule took MO ``mo_id``: owe it to the named subscription."""
    sub = conn.execute(sa.select(subs).where(subs.c.name == subscription,
                                             subs.c.enabled.is_(True))).first()
    if sub is None:
        log.error("mo=%d: webhook subscription %r does not exist or is disabled; the MO is "
                  "kept (forwarded) but no callback is owed", mo_id, subscription)
        return None
    row = conn.execute(sa.select(mo.c.dest_addr, mo.c.connection, mo.c.received_at)
                       .where(mo.c.id == mo_id)).first()
    to = row.dest_addr if row is not None else ""
    return owe(conn, key=f"mo-{mo_id}-{sub.id}", event="mo.received", url=sub.url,
               subscription_id=int(sub.id), form=sub.form, mo_id=mo_id, reply_from=to or None,
               now=now, body={
                   "mo_id": mo_id, "from": phone, "to": to, "text": text,
                   "connection": row.connection if row is not None else None,
                   "received_at": row.received_at if row is not None else now,
               })


# Asked for every message reaching a final state (store/fastsql.py: compiled once).
_FINAL = FastStatement(sa.select(
    msg.c.callback_url, msg.c.status, msg.c.dest_addr, msg.c.source_addr,
    msg.c.error_code, msg.c.error_text, msg.c.parts, msg.c.cost_millis,
    msg.c.possibly_duplicate,
).where(msg.c.id == sa.bindparam("b_id")))


def owe_message_final(conn: Connection, message_id: int, *, now: datetime) -> int | None:
    """A message reached a final state: owe its callback_url the news (once per state)."""
    row = _FINAL.one_or_none(conn, {"b_id": message_id})
    if row is None or not row.callback_url or row.status not in OUTBOUND_FINAL:
        return None
    return owe(conn, key=f"mt-{message_id}-{row.status}", event=f"message.{row.status}",
               url=row.callback_url, now=now, body={
                   "message_id": message_id, "status": row.status, "to": row.dest_addr,
                   "from": row.source_addr, "error_code": row.error_code,
                   "error_text": row.error_text, "parts": row.parts,
                   "cost_millis": row.cost_millis,
                   "possibly_duplicate": bool(row.possibly_duplicate), "at": now,
               })


def owe_event(conn: Connection, type_: str, payload: Mapping[str, Any], *, ref: str,
              now: datetime) -> list[int]:
    """A gateway event: owe it to every enabled subscription listening for ``type_``."""
    out: list[int] = []
    for sub in conn.execute(sa.select(subs).where(subs.c.enabled.is_(True))):
        if not listens(sub.events, type_):
            continue
        new_id = owe(conn, key=f"ev-{ref}-{sub.id}", event=type_, url=sub.url,
                     subscription_id=int(sub.id), form=sub.form, now=now,
                     body={"data": dict(payload), "at": now})
        if new_id is not None:
            out.append(new_id)
    return out


def listens(events: str, type_: str) -> bool:
    """``events``: "*" or comma-separated types; ``order.*`` takes every order event. A
    subscription never gets MOs through this: those go only where a 'webhook' rule says."""
    for pattern in (e.strip() for e in events.split(",")):
        if pattern == "*" or pattern == type_:
            return True
        if pattern.endswith(".*") and type_.startswith(pattern[:-1]):
            return True
    return False


def set_callback(conn: Connection, message_id: int, url: str | None) -> None:
    if url:
        conn.execute(sa.update(msg).where(msg.c.id == message_id).values(callback_url=url))


def key_callback(conn: Connection, key_id: int | None) -> str | None:
    """The default callback_url of an API key."""
    if key_id is None:
        return None
    return conn.execute(sa.select(keys.c.callback_url).where(keys.c.id == key_id)).scalar()


# -- the worker's side --------------------------------------------------------------------------

def claim_due(conn: Connection, *, instance: str, now: datetime, limit: int,
              lease: timedelta) -> list[dict[str, Any]]:
    """Take up to ``limit`` due rows (pending, or delivering with a lapsed lease)."""
    due = sa.or_(sa.and_(dl.c.status == "pending", dl.c.next_attempt_at <= now),
                 sa.and_(dl.c.status == "delivering", dl.c.lease_until < now))
    stmt = sa.select(dl.c.id).where(due).order_by(dl.c.next_attempt_at, dl.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    ids = list(conn.execute(stmt).scalars())
    if not ids:
        return []
    conn.execute(sa.update(dl).where(dl.c.id.in_(ids)).values(
        status="delivering", claimed_by=instance, lease_until=now + lease,
        attempts=dl.c.attempts + 1, updated_at=now))
    rows = conn.execute(
        sa.select(dl, subs.c.secret, subs.c.timeout, subs.c.max_concurrency, subs.c.reply)
        .select_from(dl.outerjoin(subs, subs.c.id == dl.c.subscription_id))
        .where(dl.c.id.in_(ids)).order_by(dl.c.id)).mappings()
    return [dict(r) for r in rows]


def mark_delivered(conn: Connection, delivery_id: int, *, instance: str, now: datetime,
                   http_status: int, reply_text: str | None = None) -> int | None:
    """The receiver took it. Returns the reply MT's id when a Kannel reply was queued.

    Guarded on 'delivering' by this instance: a second success (the lease lapsed and another
    worker also delivered) changes nothing and queues no second reply.
    """
    done = conn.execute(sa.update(dl).where(
        dl.c.id == delivery_id, dl.c.status == "delivering", dl.c.claimed_by == instance,
    ).values(status="delivered", delivered_at=now, updated_at=now, last_status=http_status,
             last_error=None, lease_until=None).returning(dl.c.mo_id, dl.c.reply_from)).first()
    if done is None or not reply_text or done.mo_id is None:
        return None
    sender = conn.execute(sa.select(mo.c.source_addr).where(mo.c.id == done.mo_id)).scalar()
    if not sender:
        return None
    mt_id = outbound.enqueue_mt(conn, dest_addr=sender, text=reply_text[:MAX_REPLY],
                                priority=PRIORITY_REPLY, now=now,
                                source_addr=done.reply_from, in_reply_to=int(done.mo_id))
    conn.execute(sa.update(dl).where(dl.c.id == delivery_id).values(reply_mt_id=mt_id))
    return mt_id


def mark_attempt_failed(conn: Connection, delivery_id: int, *, instance: str, now: datetime,
                        error: str, http_status: int | None, retry_at: datetime | None) -> str:
    """One attempt failed: back to 'pending' at ``retry_at``, or 'dead' (retry_at None)."""
    status = "dead" if retry_at is None else "pending"
    conn.execute(sa.update(dl).where(
        dl.c.id == delivery_id, dl.c.status == "delivering", dl.c.claimed_by == instance,
    ).values(status=status, next_attempt_at=retry_at or now, lease_until=None,
             last_error=error[:2000], last_status=http_status, updated_at=now))
    return status


def release(conn: Connection, *, instance: str, now: datetime) -> int:
    """On start: rows this instance was delivering when it stopped are due again."""
    done = conn.execute(sa.update(dl).where(
        dl.c.status == "delivering", dl.c.claimed_by == instance,
    ).values(status="pending", next_attempt_at=now, lease_until=None, updated_at=now))
    return int(done.rowcount or 0)


def next_due(conn: Connection) -> datetime | None:
    return conn.execute(sa.select(sa.func.min(dl.c.next_attempt_at))
                        .where(dl.c.status == "pending")).scalar()


# -- API ------------------------------------------------------------------------------------------

_PUBLIC = [c for c in dl.c if c.name not in ("claimed_by", "lease_until")]


def list_deliveries(conn: Connection, *, status: str | None = None, limit: int = 100,
                    before_id: int | None = None) -> list[dict[str, Any]]:
    if status is not None and status not in WEBHOOK_STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(WEBHOOK_STATUSES)}")
    stmt = sa.select(*_PUBLIC).order_by(dl.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(dl.c.status == status)
    if before_id is not None:
        stmt = stmt.where(dl.c.id < before_id)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def get_delivery(conn: Connection, delivery_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(*_PUBLIC).where(dl.c.id == delivery_id)).mappings().first()
    return None if row is None else dict(row)


def retry(conn: Connection, delivery_id: int, *, now: datetime) -> str | None:
    """A dead (or pending) delivery is due now again, with a fresh count of tries.
    Returns the status it had, or None when there is no such delivery."""
    row = conn.execute(sa.select(dl.c.status).where(dl.c.id == delivery_id)).first()
    if row is None:
        return None
    if row.status in ("dead", "pending"):
        conn.execute(sa.update(dl).where(dl.c.id == delivery_id, dl.c.status == row.status)
                     .values(status="pending", attempts=0, next_attempt_at=now,
                             updated_at=now))
    return str(row.status)


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(sa.select(dl.c.status, sa.func.count()).group_by(dl.c.status))
    out = {s: 0 for s in WEBHOOK_STATUSES}
    out.update({r[0]: int(r[1]) for r in rows})
    return out


_SUB_FIELDS = ("url", "secret", "events", "form", "reply", "max_concurrency", "timeout",
               "enabled")


def create_subscription(conn: Connection, *, name: str, now: datetime,
                        **fields: Any) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in _SUB_FIELDS and v is not None}
    values.setdefault("secret", new_secret())
    new_id = conn.execute(subs.insert().values(name=name, created_at=now, updated_at=now,
                                               **values)).inserted_primary_key[0]
    found = get_subscription(conn, int(new_id))
    assert found is not None
    return found


def update_subscription(conn: Connection, sub_id: int, *, now: datetime,
                        **fields: Any) -> dict[str, Any] | None:
    values = {k: v for k, v in fields.items() if k in _SUB_FIELDS and v is not None}
    if values:
        conn.execute(sa.update(subs).where(subs.c.id == sub_id).values(updated_at=now,
                                                                       **values))
    return get_subscription(conn, sub_id)


def delete_subscription(conn: Connection, sub_id: int) -> bool:
    return bool(conn.execute(subs.delete().where(subs.c.id == sub_id)).rowcount)


def get_subscription(conn: Connection, sub_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(subs).where(subs.c.id == sub_id)).mappings().first()
    return None if row is None else dict(row)


def list_subscriptions(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.select(subs).order_by(subs.c.id)).mappings()]


def default_secret(conn: Connection) -> str:
    """The secret signing callbacks that have no subscription (a message's callback_url):
    made at first start, kept in the settings table (GET /webhooks/default-secret)."""
    found = conn.execute(sa.select(settings.c.value)
                         .where(settings.c.key == DEFAULT_SECRET_KEY)).scalar()
    if found:
        return str(found)
    value = new_secret()
    ins = dialect_insert(conn, settings).values(key=DEFAULT_SECRET_KEY, value=value)
    conn.execute(ins.on_conflict_do_nothing(index_elements=["key"]))
    return str(conn.execute(sa.select(settings.c.value)
                            .where(settings.c.key == DEFAULT_SECRET_KEY)).scalar_one())
