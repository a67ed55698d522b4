"""The durable outbound (MT) queue: enqueue, claim, submit, fail, requeue, cancel."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

# A module reference, not a name: store.receipts imports (through upstream) this module.
from store import receipts, upstream
from store.events import dialect_insert, record_event, record_event_rows, record_events
from store.fastsql import FastStatement
from store.ids import normalise_smsc_id, smsc_id_candidates
from store.models import message_events as events
from store.models import outbound_messages as msg
from store.models import outbound_parts as part
from store.models import pending_receipts as pending
from store.models_upstream import upstream_outbox

# error_code of a message failed because no submit_sm_resp came, even after the retry
# (outside the SMPP status range). A late response may still show it was accepted.
NO_SUBMIT_RESPONSE = 0x10000

# Upper bound on rows expired per claim call, so one call stays short even after a long
# outage left many stale rows; the rest expire on the next calls.
EXPIRE_BATCH = 1000

CancelResult = Literal["cancelled", "not_found", "too_late"]


# Compiled once, run on the cursor (store/fastsql.py): a reply per MO is queued on the hot path.
_ENQUEUE = FastStatement(msg.insert().returning(msg.c.id), keys=(
    "priority", "source_addr", "dest_addr", "text", "status", "schedule_at", "expires_at",
    "created_at", "updated_at", "in_reply_to", "registered_delivery", "upstream"))


def enqueue_mt(
    conn: Connection,
    *,
    dest_addr: str,
    text: str,
    priority: int,
    now: datetime,
    source_addr: str | None = None,
    schedule_at: datetime | None = None,
    expires_at: datetime | None = None,
    in_reply_to: int | None = None,
    registered_delivery: bool = True,
    upstream: str | None = None,
) -> int:
    """Queue one MT; ``upstream``: the SMPP-server application that submitted it (its
    receipts go back to it, store/upstream.py)."""
    if not 0 <= priority <= 3:
        raise ValueError(f"priority must be 0..3, got {priority}")
    new_id: int = _ENQUEUE.scalar(conn, {
        "priority": priority, "source_addr": source_addr, "dest_addr": dest_addr,
        "text": text, "status": "queued", "schedule_at": schedule_at,
        "expires_at": expires_at, "created_at": now, "updated_at": now,
        "in_reply_to": in_reply_to, "registered_delivery": registered_delivery,
        "upstream": upstream,
    })
    record_event(conn, "out", new_id, "queued", now=now)
    return new_id


def enqueue_many(
    conn: Connection,
    items: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    source_addr: str | None = None,
    broadcast_id: int | None = None,
) -> list[int]:
    """Queue many MTs in one executemany (broadcasts): ids returned in ``items`` order.

    Each item has dest_addr, text and optionally priority (default 3, bulk), schedule_at,
    expires_at, registered_delivery. On SQLite, INSERT ... RETURNING with many rows runs one
    statement per row (notes-measured.md), so there a plain executemany runs and the ids are
    read back: the store has one writer and SQLite serialises write transactions
    (BEGIN IMMEDIATE), so the new rows are exactly those above the previous maximum id.
    """
    if not items:
        return []
    rows = []
    for item in items:
        priority = int(item.get("priority", 3))
        if not 0 <= priority <= 3:
            raise ValueError(f"priority must be 0..3, got {priority}")
        rows.append({
            "priority": priority,
            "source_addr": item.get("source_addr", source_addr),
            "dest_addr": item["dest_addr"],
            "text": item["text"],
            "status": "queued",
            "schedule_at": item.get("schedule_at"),
            "expires_at": item.get("expires_at"),
            "created_at": now,
            "updated_at": now,
            "registered_delivery": bool(item.get("registered_delivery", True)),
            "broadcast_id": item.get("broadcast_id", broadcast_id),
        })
    if conn.dialect.name == "sqlite":
        before = conn.execute(sa.select(sa.func.coalesce(sa.func.max(msg.c.id), 0))).scalar_one()
        conn.execute(msg.insert(), rows)
        ids = list(
            conn.execute(
                sa.select(msg.c.id).where(msg.c.id > before).order_by(msg.c.id)
            ).scalars()
        )
        if len(ids) != len(rows):  # someone else wrote meanwhile: not possible with BEGIN IMMEDIATE
            raise RuntimeError(f"enqueue_many: expected {len(rows)} new ids, found {len(ids)}")
    else:
        ids = list(
            conn.execute(
                msg.insert().returning(msg.c.id, sort_by_parameter_order=True), rows
            ).scalars()
        )
    record_events(conn, "out", ids, "queued", now=now)
    return ids


def _for_update_skip_locked(conn: Connection, stmt: sa.Select[Any]) -> sa.Select[Any]:
    # PostgreSQL: rows another instance is claiming are skipped, not waited for, so two
    # claimers never get the same row. SQLite serialises writers (BEGIN IMMEDIATE) instead.
    if conn.dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


def expire_due(conn: Connection, *, now: datetime, limit: int = EXPIRE_BATCH) -> list[int]:
    """Queued rows past expires_at become 'expired'."""
    ids = list(
        conn.execute(
            _for_update_skip_locked(
                conn,
                sa.select(msg.c.id)
                .where(msg.c.status == "queued", msg.c.expires_at < now)
                .limit(limit),
            )
        ).scalars()
    )
    if not ids:
        return []
    conn.execute(
        sa.update(msg)
        .where(msg.c.id.in_(ids), msg.c.status == "queued")
        .values(status="expired", updated_at=now)
    )
    record_events(conn, "out", ids, "expired", now=now, detail="expired before it was sent")
    for message_id in ids:
        upstream.owe_receipt(conn, message_id, now=now)
    return ids


def dest_prefix_filter(
    *,
    serve: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    exclude_all: bool = False,
    unserved_except: Sequence[str] | None = None,
) -> sa.ColumnElement[bool]:
    """A claim condition on dest_addr for one connection (see gateway/routing.py).

    (serves by prefix AND no cheaper live connection does) OR (nothing configured serves
    it, so it is claimed in order to be failed). Prefixes are digit strings (validated when
    the configuration is loaded), so LIKE needs no escaping.
    """

    def any_prefix(prefixes: Sequence[str]) -> sa.ColumnElement[bool]:
        return sa.or_(sa.false(), *(msg.c.dest_addr.like(f"{p}%") for p in prefixes))

    mine: sa.ColumnElement[bool] = sa.true() if serve is None else any_prefix(serve)
    if exclude_all:
        mine = sa.false()
    elif exclude:
        mine = sa.and_(mine, sa.not_(any_prefix(exclude)))
    if unserved_except is None:
        return mine
    return sa.or_(mine, sa.not_(any_prefix(unserved_except)))


# Replies to MOs (store.inbound.PRIORITY_REPLY) and anything as urgent.
URGENT_PRIORITY = 1


def urgent_only(where: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """``where`` narrowed to urgent messages (replies): what is still sent while receipts
    are backing up at the SMSC (gateway/dispatcher.py)."""
    return sa.and_(where, msg.c.priority <= URGENT_PRIORITY)


def claim_batch(
    conn: Connection,
    *,
    instance: str,
    connection: str,
    now: datetime,
    limit: int,
    where: sa.ColumnElement[bool] | None = None,
    exclude_ids: Collection[int] = (),
    where_key: Hashable | None = None,
    expire: bool = True,
) -> list[Row]:
    """Claim up to ``limit`` due queued rows for sending: status 'sending', attempts + 1.

    Order: priority, then due time (schedule_at, or arrival for unscheduled rows), then id.
    Rows already past expires_at are expired instead. Selection and update are two
    statements: the ids are locked by the SELECT (SKIP LOCKED on PostgreSQL) and the
    UPDATE's RETURNING carries no order, so the rows are put back in claim order here.
    ``where`` narrows the rows (a connection's routing filter, `dest_prefix_filter`);
    ``exclude_ids`` skips rows the caller already found it cannot send right now.

    ``where_key``: a hashable name for ``where`` (the dispatcher's routing filter): the claim
    is then ONE statement, compiled once per filter (`_claim_fast`). ``expire=False`` leaves
    expiring to a later call (rows past expires_at are never claimed either way).
    """
    if expire:
        expire_due(conn, now=now)
    if where_key is not None and not exclude_ids:
        return _claim_fast(conn, where_key, where, instance=instance, connection=connection,
                           now=now, limit=limit)
    conditions: list[sa.ColumnElement[bool]] = [
        msg.c.status == "queued",
        sa.or_(msg.c.schedule_at.is_(None), msg.c.schedule_at <= now),
        sa.or_(msg.c.expires_at.is_(None), msg.c.expires_at >= now),
    ]
    if where is not None:
        conditions.append(where)
    if exclude_ids:
        conditions.append(msg.c.id.not_in(list(exclude_ids)))
    ids = list(
        conn.execute(
            _for_update_skip_locked(
                conn,
                sa.select(msg.c.id)
                .where(*conditions)
                .order_by(
                    msg.c.priority,
                    sa.func.coalesce(msg.c.schedule_at, msg.c.created_at),
                    msg.c.id,
                )
                .limit(limit),
            )
        ).scalars()
    )
    if not ids:
        return []
    rows = conn.execute(
        sa.update(msg)
        .where(msg.c.id.in_(ids))
        .values(
            status="sending",
            claimed_by=instance,
            connection=connection,
            attempts=msg.c.attempts + 1,
            updated_at=now,
        )
        .returning(*msg.c)
    ).all()
    order = {id_: i for i, id_ in enumerate(ids)}
    rows.sort(key=lambda r: order[r.id])
    record_events(conn, "out", ids, "sending", now=now, detail=f"{instance} via {connection}")
    return rows


# Claim statements by routing filter (few: one per connection and set of live binds).
_CLAIMS: dict[Hashable, FastStatement] = {}


def _claim_statement(where: sa.ColumnElement[bool] | None) -> FastStatement:
    def build(conn: Connection) -> sa.ClauseElement:
        now = sa.bindparam("b_now", type_=msg.c.updated_at.type)
        pick = (sa.select(msg.c.id)
                .where(msg.c.status == "queued",
                       sa.or_(msg.c.schedule_at.is_(None), msg.c.schedule_at <= now),
                       sa.or_(msg.c.expires_at.is_(None), msg.c.expires_at >= now),
                       *([where] if where is not None else []))
                .order_by(msg.c.priority, sa.func.coalesce(msg.c.schedule_at, msg.c.created_at),
                          msg.c.id)
                .limit(sa.bindparam("b_limit", type_=sa.Integer)))
        pick = _for_update_skip_locked(conn, pick)
        return (sa.update(msg).where(msg.c.id.in_(pick.scalar_subquery()))
                .values(status="sending", claimed_by=sa.bindparam("b_instance"),
                        connection=sa.bindparam("b_connection"),
                        attempts=msg.c.attempts + 1, updated_at=now)
                .returning(*msg.c))

    return FastStatement(build)


def _claim_fast(conn: Connection, where_key: Hashable, where: sa.ColumnElement[bool] | None,
                *, instance: str, connection: str, now: datetime, limit: int) -> list[Any]:
    """claim_batch as one UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING."""
    stmt = _CLAIMS.get(where_key)
    if stmt is None:
        stmt = _CLAIMS[where_key] = _claim_statement(where)
    rows = stmt.all(conn, {"b_now": now, "b_limit": limit, "b_instance": instance,
                           "b_connection": connection})
    if not rows:
        return []
    # RETURNING carries no order: back to claim order.
    rows.sort(key=lambda r: (r.priority, r.schedule_at or r.created_at, r.id))
    record_events(conn, "out", [r.id for r in rows], "sending", now=now,
                  detail=f"{instance} via {connection}")
    return rows


def mark_part_submitted(
    conn: Connection,
    *,
    message_id: int,
    part_no: int,
    parts: int,
    smsc_message_id: str,
    now: datetime,
    cost_millis: int | None = None,
    connection: str | None = None,
) -> None:
    """Record a submit_sm_resp id; the message is 'submitted' once every part has one.

    Receipts that overtook this submit_sm_resp are applied right after. When the part
    already has a different id (both a timed-out submission and its retry reached the
    SMSC, or a resend after a lost bind), the earlier id is kept on a *copy* row,
    part_no = -part_no, so the receipt for that copy still matches (store/receipts.py).
    ``cost_millis`` (the whole message's cost on its route) and ``connection`` (the bind
    that carried it, which may differ from the one that claimed it) are stored on the
    message when given.
    """
    if not 1 <= part_no <= parts:
        raise ValueError(f"part_no {part_no} outside 1..{parts}")
    norm = normalise_smsc_id(smsc_message_id)
    _keep_earlier_copy(conn, message_id, part_no, norm)
    ins = dialect_insert(conn, part).values(
        message_id=message_id,
        part_no=part_no,
        smsc_message_id=norm,
        status="submitted",
        submitted_at=now,
    )
    # A resubmission (retry after a lost response) replaces the part's earlier id.
    ins = ins.on_conflict_do_update(
        index_elements=["message_id", "part_no"],
        set_={
            "smsc_message_id": norm,
            "status": "submitted",
            "error_code": None,
            "submitted_at": now,
            "done_at": None,
        },
    ).returning(part.c.id)
    part_id = conn.execute(ins).scalar_one()
    conn.execute(
        sa.update(msg).where(msg.c.id == message_id, msg.c.parts != parts).values(parts=parts)
    )
    extra: dict[str, Any] = {}
    if cost_millis is not None:
        extra["cost_millis"] = cost_millis
    if connection is not None:
        extra["connection"] = connection
    if extra:
        conn.execute(sa.update(msg).where(msg.c.id == message_id).values(**extra))
    submitted = conn.execute(
        sa.select(sa.func.count())
        .select_from(part)
        .where(part.c.message_id == message_id, part.c.part_no > 0,
               part.c.smsc_message_id.is_not(None))
    ).scalar_one()
    if submitted >= parts:
        done = conn.execute(
            sa.update(msg)
            .where(msg.c.id == message_id, msg.c.status == "sending")
            .values(status="submitted", updated_at=now)
            .returning(msg.c.id)
        ).first()
        if done is not None:
            ids = conn.execute(
                sa.select(part.c.smsc_message_id)
                .where(part.c.message_id == message_id, part.c.part_no > 0)
                .order_by(part.c.part_no)
            ).scalars()
            record_event(conn, "out", message_id, "submitted", now=now, detail=",".join(ids))
    found = conn.execute(
        sa.select(part.c.id, part.c.message_id, part.c.part_no, part.c.smsc_message_id).where(
            part.c.id == part_id
        )
    ).one()
    receipts.apply_pending_for(conn, found, now=now)


@dataclass(frozen=True, slots=True)
class SubmittedPart:
    """A submit_sm_resp (ESME_ROK) to record: see `mark_part_submitted` for the fields."""

    message_id: int
    part_no: int
    parts: int
    smsc_message_id: str
    cost_millis: int | None = None
    connection: str | None = None


# Statements of the batched path, built once (building Core statements per call was a
# quarter of the writer thread's time; their compiled form is then found in the cache).
_ids = sa.bindparam("ids", expanding=True)
_PARTS_OF = FastStatement(sa.select(part.c.message_id, part.c.part_no,
                                    part.c.smsc_message_id).where(part.c.message_id.in_(_ids)))
_SET_ROUTE = FastStatement(
    sa.update(msg).where(msg.c.id == sa.bindparam("b_id"))
    .values(parts=sa.bindparam("b_parts"),
            cost_millis=sa.func.coalesce(sa.bindparam("b_cost", type_=sa.Integer),
                                         msg.c.cost_millis),
            connection=sa.func.coalesce(sa.bindparam("b_conn", type_=sa.String),
                                        msg.c.connection)))
_SUBMITTED = FastStatement(
    sa.update(msg).where(msg.c.id.in_(_ids), msg.c.status == "sending")
    .values(status="submitted", updated_at=sa.bindparam("b_now")).returning(msg.c.id))
_PENDING_FOR = FastStatement(sa.select(pending.c.smsc_message_id).where(
    pending.c.smsc_message_id.in_(sa.bindparam("cands", expanding=True))).limit(1))


def _build_part_upsert(conn: Connection) -> sa.ClauseElement:
    ins = dialect_insert(conn, part).values(
        message_id=sa.bindparam("message_id"), part_no=sa.bindparam("part_no"),
        smsc_message_id=sa.bindparam("smsc_message_id"), status="submitted",
        submitted_at=sa.bindparam("submitted_at"))
    return ins.on_conflict_do_update(
        index_elements=["message_id", "part_no"],
        set_={"smsc_message_id": ins.excluded.smsc_message_id, "status": "submitted",
              "error_code": None, "submitted_at": ins.excluded.submitted_at,
              "done_at": None})


_PART_UPSERT = FastStatement(_build_part_upsert)


def mark_parts_submitted(conn: Connection, items: Sequence[SubmittedPart], *,
                         now: datetime) -> None:
    """`mark_part_submitted` for many parts at once: about five statements per batch
    instead of about nine per part (the dispatcher's submit responses, gateway/mt_outcomes.py).

    The rare cases - a part that already holds a different SMSC id (its earlier copy must be
    kept) or twice in the batch, a receipt that overtook its submit_sm_resp - go through
    `mark_part_submitted` itself, with every part of their message, so the outcome is the
    same as recording the parts one by one.
    """
    if not items:
        return
    for it in items:
        if not 1 <= it.part_no <= it.parts:
            raise ValueError(f"part_no {it.part_no} outside 1..{it.parts}")
    message_ids = sorted({it.message_id for it in items})
    held: dict[tuple[int, int], str | None] = {
        (r.message_id, r.part_no): r.smsc_message_id
        for r in _PARTS_OF.all(conn, {"ids": message_ids})}
    norm = [normalise_smsc_id(it.smsc_message_id) for it in items]
    slow: set[int] = set()
    seen: set[tuple[int, int]] = set()
    for it, n in zip(items, norm, strict=True):
        key = (it.message_id, it.part_no)
        earlier = held.get(key)
        if key in seen or (earlier and earlier != n):
            slow.add(it.message_id)
        seen.add(key)
    cands = sorted({c for n in norm for c in smsc_id_candidates(n)})
    if cands and _PENDING_FOR.all(conn, {"cands": cands}):
        # A receipt came before its part was known: find whose and take the careful path.
        parked = {normalise_smsc_id(x) for x in conn.execute(
            sa.select(pending.c.smsc_message_id).where(pending.c.smsc_message_id.in_(cands))
        ).scalars()}
        for it, n in zip(items, norm, strict=True):
            if not parked.isdisjoint(smsc_id_candidates(n)):
                slow.add(it.message_id)
    fast = [(it, n) for it, n in zip(items, norm, strict=True) if it.message_id not in slow]
    if fast:
        _PART_UPSERT.many(conn, [
            {"message_id": it.message_id, "part_no": it.part_no, "smsc_message_id": n,
             "submitted_at": now} for it, n in fast])
        last = {it.message_id: it for it, _ in fast}
        _SET_ROUTE.many(conn, [
            {"b_id": m, "b_parts": it.parts, "b_cost": it.cost_millis, "b_conn": it.connection}
            for m, it in last.items()])
        for it, n in fast:
            held[(it.message_id, it.part_no)] = n
        ids_of: dict[int, list[tuple[int, str]]] = {}
        for (m, p), smsc_id in held.items():
            if p > 0 and smsc_id is not None and m in last:
                ids_of.setdefault(m, []).append((p, smsc_id))
        complete = [m for m, it in last.items() if len(ids_of.get(m, ())) >= it.parts]
        if complete:
            done = [r.id for r in _SUBMITTED.all(conn, {"ids": complete, "b_now": now})]
            record_event_rows(conn, [
                {"direction": "out", "message_id": m, "status": "submitted", "at": now,
                 "detail": ",".join(i for _, i in sorted(ids_of[m]))} for m in sorted(done)])
    for it in items:
        if it.message_id in slow:
            mark_part_submitted(conn, message_id=it.message_id, part_no=it.part_no,
                                parts=it.parts, smsc_message_id=it.smsc_message_id, now=now,
                                cost_millis=it.cost_millis, connection=it.connection)


def _keep_earlier_copy(conn: Connection, message_id: int, part_no: int, new_id: str) -> None:
    earlier = conn.execute(
        sa.select(part.c.smsc_message_id, part.c.status, part.c.error_code,
                  part.c.submitted_at, part.c.done_at)
        .where(part.c.message_id == message_id, part.c.part_no == part_no)
    ).first()
    if earlier is None or not earlier.smsc_message_id or earlier.smsc_message_id == new_id:
        return
    values = dict(earlier._mapping)
    ins = dialect_insert(conn, part).values(message_id=message_id, part_no=-part_no, **values)
    # Only the latest earlier copy is kept: more than two submissions of one part that
    # all reached the SMSC needs a lost bind and a lost response in a row.
    conn.execute(ins.on_conflict_do_update(index_elements=["message_id", "part_no"],
                                           set_=values))


def _record_copy(conn: Connection, message_id: int, part_no: int, smsc_id: str,
                 now: datetime) -> None:
    values = {"smsc_message_id": smsc_id, "status": "submitted", "error_code": None,
              "submitted_at": now, "done_at": None}
    ins = dialect_insert(conn, part).values(message_id=message_id, part_no=-part_no, **values)
    copy_id = conn.execute(ins.on_conflict_do_update(
        index_elements=["message_id", "part_no"], set_=values).returning(part.c.id)).scalar_one()
    found = conn.execute(sa.select(part.c.id, part.c.message_id, part.c.part_no,
                                   part.c.smsc_message_id).where(part.c.id == copy_id)).one()
    receipts.apply_pending_for(conn, found, now=now)


def record_late_submit(
    conn: Connection,
    *,
    message_id: int,
    part_no: int,
    parts: int,
    smsc_message_id: str,
    now: datetime,
    connection: str | None = None,
) -> str | None:
    """A submit_sm_resp (ESME_ROK) that came after its request timed out.

    The SMSC accepted the part after all: its id is recorded like any other (so receipts
    match, including ones parked before), and a message failed only for want of a response
    (`NO_SUBMIT_RESPONSE`) gets its true state back: 'submitted' once every part has an id
    (then 'delivered' if the receipts are in), flagged possibly_duplicate since it was
    retried. Returns the message's status afterwards (None: no such message).
    """
    before = conn.execute(
        sa.select(msg.c.status, msg.c.error_code, msg.c.error_text).where(msg.c.id == message_id)
    ).first()
    if before is None:
        return None
    revive = before.status == "failed" and before.error_code == NO_SUBMIT_RESPONSE
    if revive:
        conn.execute(sa.update(msg).where(msg.c.id == message_id).values(
            status="sending", error_code=None, error_text=None, possibly_duplicate=True,
            updated_at=now))
    record_event(conn, "out", message_id, "sending" if revive else before.status, now=now,
                 detail=f"late submit_sm_resp: part {part_no}/{parts} accepted by the SMSC "
                        f"id={normalise_smsc_id(smsc_message_id)}")
    primary = conn.execute(sa.select(part.c.smsc_message_id).where(
        part.c.message_id == message_id, part.c.part_no == part_no)).scalar_one_or_none()
    norm = normalise_smsc_id(smsc_message_id)
    if primary and primary != norm:
        # The retry was answered first and holds the part: this id is the earlier copy.
        _record_copy(conn, message_id, part_no, norm, now)
    else:
        mark_part_submitted(conn, message_id=message_id, part_no=part_no, parts=parts,
                            smsc_message_id=smsc_message_id, now=now, connection=connection)
    status: str = conn.execute(sa.select(msg.c.status).where(msg.c.id == message_id)).scalar_one()
    if not revive:
        return status
    if status == "sending":
        # Other parts are still unanswered: the message stays failed until their late
        # responses come too (each one calls this again).
        conn.execute(sa.update(msg).where(msg.c.id == message_id).values(
            status="failed", error_code=before.error_code, error_text=before.error_text,
            updated_at=now))
        record_event(conn, "out", message_id, "failed", now=now,
                     detail=f"{before.error_code}: other parts still without a response")
        return "failed"
    # The failure an upstream application was told of (if not yet sent) is withdrawn; the
    # real final state will owe it a receipt again.
    conn.execute(sa.delete(upstream_outbox).where(
        upstream_outbox.c.message_id == message_id, upstream_outbox.c.kind == "receipt",
        upstream_outbox.c.delivered_at.is_(None)))
    if status in ("delivered", "failed", "expired", "rejected"):
        upstream.owe_receipt(conn, message_id, now=now)
    return status


def flag_possible_duplicate(conn: Connection, message_id: int, *, now: datetime) -> None:
    """A submit_sm went unanswered and is being retried: the handset may get it twice."""
    conn.execute(
        sa.update(msg).where(msg.c.id == message_id).values(possibly_duplicate=True,
                                                               updated_at=now)
    )
    record_event(conn, "out", message_id, "sending", now=now,
                 detail="no submit_sm_resp; retried, possibly duplicated")


def mark_failed(
    conn: Connection,
    message_id: int,
    *,
    error_code: int | None,
    error_text: str | None,
    now: datetime,
    status: str = "failed",
) -> None:
    """A final failure before delivery (error submit_sm_resp, no route, ...)."""
    if status not in ("failed", "rejected", "expired"):
        raise ValueError(f"mark_failed status must be failed/rejected/expired, got {status!r}")
    conn.execute(
        sa.update(msg)
        .where(msg.c.id == message_id)
        .values(status=status, error_code=error_code, error_text=error_text, updated_at=now)
    )
    detail = error_text if error_code is None else f"{error_code}: {error_text or ''}".rstrip()
    record_event(conn, "out", message_id, status, now=now, detail=detail)
    # An upstream application that submitted it is owed a receipt for every final state.
    upstream.owe_receipt(conn, message_id, now=now)


def requeue(
    conn: Connection,
    message_ids: Iterable[int],
    *,
    now: datetime,
    possibly_duplicate: bool = False,
    detail: str | None = None,
) -> int:
    """Put claimed ('sending') rows back in the queue, e.g. after throttling or a lost bind."""
    ids = list(message_ids)
    if not ids:
        return 0
    values: dict[str, Any] = {
        "status": "queued",
        "claimed_by": None,
        "connection": None,
        "updated_at": now,
    }
    if possibly_duplicate:
        # Never cleared here: once a submit may have reached the SMSC, the flag stays.
        values["possibly_duplicate"] = True
    done = list(
        conn.execute(
            sa.update(msg)
            .where(msg.c.id.in_(ids), msg.c.status == "sending")
            .values(**values)
            .returning(msg.c.id)
        ).scalars()
    )
    record_events(conn, "out", sorted(done), "queued", now=now, detail=detail or "requeued")
    return len(done)


def release_claims(conn: Connection, *, instance: str, now: datetime) -> int:
    """On start: this instance's rows left 'sending' by a crash go back to the queue.

    They may have reached the SMSC before the crash, so they are flagged possibly_duplicate.
    """
    ids = conn.execute(
        sa.select(msg.c.id).where(msg.c.claimed_by == instance, msg.c.status == "sending")
    ).scalars()
    return requeue(
        conn, list(ids), now=now, possibly_duplicate=True, detail=f"released by {instance}"
    )


def cancel(conn: Connection, message_id: int, *, now: datetime) -> CancelResult:
    """Cancel a message that has not been claimed yet."""
    # On PostgreSQL a row being claimed is locked; the UPDATE waits and then sees 'sending'.
    done = conn.execute(
        sa.update(msg)
        .where(msg.c.id == message_id, msg.c.status == "queued")
        .values(status="cancelled", updated_at=now)
        .returning(msg.c.id)
    ).first()
    if done is not None:
        record_event(conn, "out", message_id, "cancelled", now=now)
        upstream.owe_receipt(conn, message_id, now=now)
        return "cancelled"
    exists = conn.execute(sa.select(msg.c.id).where(msg.c.id == message_id)).first()
    return "not_found" if exists is None else "too_late"


def get_message(conn: Connection, message_id: int) -> dict[str, Any] | None:
    """The message with its parts (by part_no) and full status history (oldest first)."""
    row = conn.execute(sa.select(msg).where(msg.c.id == message_id)).first()
    if row is None:
        return None
    out: dict[str, Any] = dict(row._mapping)
    out["parts_detail"] = [
        dict(r._mapping)
        for r in conn.execute(
            sa.select(part).where(part.c.message_id == message_id).order_by(part.c.part_no)
        )
    ]
    out["events"] = [
        dict(r._mapping)
        for r in conn.execute(
            sa.select(events.c.status, events.c.at, events.c.detail)
            .where(events.c.direction == "out", events.c.message_id == message_id)
            .order_by(events.c.id)
        )
    ]
    return out


def queue_depth(conn: Connection) -> dict[int, int]:
    """Queued messages per priority (all four priorities present)."""
    depth = dict.fromkeys(range(4), 0)
    for priority, n in conn.execute(
        sa.select(msg.c.priority, sa.func.count())
        .where(msg.c.status == "queued")
        .group_by(msg.c.priority)
    ):
        depth[int(priority)] = int(n)
    return depth


# -- receipt deadline (gateway/receipt_followup.py) ----------------------------------------------


def parts_awaiting_receipt(conn: Connection, *, submitted_before: datetime, queried: bool,
                           limit: int) -> list[Row]:
    """Parts still `submitted` (no receipt) since before `submitted_before`: not yet
    followed up (`queried` False) or followed up before it (True), oldest first."""
    q = (sa.select(part.c.id, part.c.message_id, part.c.part_no, part.c.smsc_message_id,
                   msg.c.connection, msg.c.source_addr)
         .join(msg, msg.c.id == part.c.message_id)
         .where(part.c.status == "submitted", part.c.smsc_message_id.is_not(None)))
    if queried:
        q = q.where(part.c.queried_at.is_not(None), part.c.queried_at <= submitted_before)
    else:
        q = q.where(part.c.submitted_at <= submitted_before, part.c.queried_at.is_(None))
    return list(conn.execute(q.order_by(part.c.id).limit(limit)).all())


def mark_part_queried(conn: Connection, part_id: int, *, now: datetime) -> bool:
    """The part was followed up with query_sm now; False when its receipt came meanwhile."""
    return bool(conn.execute(
        sa.update(part).where(part.c.id == part_id, part.c.status == "submitted",
                              part.c.queried_at.is_(None))
        .values(queried_at=now)).rowcount)
