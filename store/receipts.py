"""Delivery receipts: match to a submitted part, aggregate the message status.

A receipt can arrive before its submit_sm_resp has been stored (the SMSC answers both at
once and they take different paths here), or name an id we never saw. Such receipts are kept
in pending_receipts and applied when the id is written (outbound.mark_part_submitted); they
are never dropped.

That hand-over alone is not enough on PostgreSQL with several writers (READ COMMITTED):
the receipt's transaction looks for the part before the part's transaction commits, and the
part's transaction looks in pending_receipts before the receipt's commits, so both miss and
the receipt stays parked. `retry_pending` closes the gap: run in a fresh transaction after
both committed (the gateway's receipt sweep, gateway/receipt_sweep.py), it sees both rows.
A parked receipt is claimed by deleting it (DELETE ... RETURNING) before it is applied, so
two instances retrying the same receipt apply it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store import upstream
from store.events import record_event, record_event_rows
from store.fastsql import FastStatement
from store.ids import normalise_smsc_id, smsc_id_candidates
from store.models import outbound_messages as msg
from store.models import outbound_parts as part
from store.models import pending_receipts as pending

# Receipt "stat:" values (SMPP 3.4 Appendix B, message_state names) -> part status.
RECEIPT_STATES: dict[str, str] = {
    "DELIVRD": "delivered",
    "DELIVERED": "delivered",
    "UNDELIV": "failed",
    "UNDELIVERABLE": "failed",
    "EXPIRED": "expired",
    "REJECTD": "rejected",
    "REJECTED": "rejected",
    "DELETED": "failed",
    "UNKNOWN": "unknown",
    # ACCEPTD: an operator accepted it on the handset's behalf; it will not be delivered
    # any further, and SMPP counts it as final. Treated as delivered.
    "ACCEPTD": "delivered",
    "ACCEPTED": "delivered",
}

# pending_receipts.smsc_message_id / outbound_parts.smsc_message_id are String(128): a longer
# id can match nothing we sent (submit_sm_resp ids are at most 65 octets), and storing it
# whole would fail the transaction, so the SMSC would get an error and redeliver forever.
SMSC_ID_MAX = 128
_INT32_MAX = 2**31 - 1

PART_FINAL_STATES = frozenset({"delivered", "failed", "expired", "rejected", "unknown"})
# A message is failed/expired/rejected as soon as one of its parts is (the text is broken).
_FAILING = ("failed", "expired", "rejected")
# Message statuses a receipt may still move on from (a late receipt refines `unknown`).
_OPEN_MESSAGE_STATUSES = ("sending", "submitted", "unknown")


def apply_receipt(
    conn: Connection,
    *,
    connection: str,
    smsc_message_id: str,
    state: str,
    error_code: int | None,
    raw: str,
    now: datetime,
) -> int | None:
    """Apply a receipt to its part; returns the message id, or None when kept as pending."""
    if state not in PART_FINAL_STATES:
        raise ValueError(f"receipt state {state!r} is not one of {sorted(PART_FINAL_STATES)}")
    smsc_message_id = _storable(smsc_message_id)[:SMSC_ID_MAX]
    if error_code is not None and not 0 <= error_code <= _INT32_MAX:
        error_code = None  # does not fit the column; the raw text keeps it
    found = find_part(conn, smsc_message_id, connection=connection)
    if found is None:
        conn.execute(
            pending.insert().values(
                connection=connection,
                smsc_message_id=normalise_smsc_id(smsc_message_id),
                state=state,
                error_code=error_code,
                received_at=now,
                raw=_storable(raw),
            )
        )
        return None
    apply_to_part(conn, found, state=state, error_code=error_code, now=now)
    return int(found.message_id)


def find_part(conn: Connection, smsc_message_id: str, *, connection: str | None) -> Row | None:
    """The part an SMSC id names, trying its decimal/hex readings.

    Preference when several match: the exact normalised spelling, then a part sent over the
    receipt's connection, then the most recent submission.
    """
    candidates = smsc_id_candidates(smsc_message_id)
    rows = conn.execute(
        sa.select(
            part.c.id,
            part.c.message_id,
            part.c.part_no,
            part.c.smsc_message_id,
            msg.c.connection,
        )
        .join(msg, msg.c.id == part.c.message_id)
        .where(part.c.smsc_message_id.in_(candidates))
    ).all()
    if not rows:
        return None

    return min(rows, key=lambda r: _rank(r, candidates, connection))


def apply_to_part(
    conn: Connection, found: Row, *, state: str, error_code: int | None, now: datetime,
    source: str = "receipt",
) -> str:
    """Set one part's final state and re-aggregate its message; returns the message status.

    `source` names what told us, for the status history: a receipt, query_sm, or the
    receipt deadline. Every part final, none failing, one `unknown`: the message is
    `unknown` (a later receipt may still make it delivered)."""
    conn.execute(
        sa.update(part)
        .where(part.c.id == found.id)
        .values(status=state, error_code=error_code, done_at=now)
    )
    message = conn.execute(
        sa.select(msg.c.status, msg.c.parts).where(msg.c.id == found.message_id)
    ).one()
    rows = conn.execute(
        sa.select(part.c.part_no, part.c.status).where(part.c.message_id == found.message_id)
    ).all()
    new_status = _aggregate(message.status, message.parts, {n: s for n, s in rows})
    values: dict[str, Any] = {"updated_at": now}
    if new_status != message.status:
        values["status"] = new_status
        if new_status in _FAILING:
            values["error_code"] = error_code
    conn.execute(sa.update(msg).where(msg.c.id == found.message_id).values(**values))
    record_event(conn, "out", found.message_id, new_status, now=now,
                 detail=_detail(found, message.parts, state, error_code, source))
    return str(new_status)


def _aggregate(status: str, parts: int, part_states: dict[int, str]) -> str:
    """A message's status from its parts' (part_no -> status, copies at -part_no)."""
    if status not in _OPEN_MESSAGE_STATUSES:
        return status
    # part_no -N is an earlier copy of part N that also reached the SMSC (a retried submit
    # whose first response came late): a delivered copy means the handset has that part.
    copies_delivered = {-n for n, s in part_states.items() if n < 0 and s == "delivered"}
    statuses = {n: "delivered" if n in copies_delivered else s
                for n, s in part_states.items() if n > 0}
    failing = [statuses[n] for n in sorted(statuses) if statuses[n] in _FAILING]
    if failing:
        return failing[0]
    if len(statuses) >= parts and all(s in PART_FINAL_STATES for s in statuses.values()):
        # Every part final, none failing: delivered, or `unknown` when one part's fate is
        # unknown (receipt deadline passed); a later receipt may still make it delivered.
        return "delivered" if set(statuses.values()) == {"delivered"} else "unknown"
    return status


def _detail(found: Row, parts: int, state: str, error_code: int | None,
            source: str = "receipt") -> str:
    which = (f"part {found.part_no}" if found.part_no > 0
             else f"earlier copy of part {-found.part_no}")
    detail = f"{source} {which}/{parts}: {state} id={found.smsc_message_id}"
    if error_code is not None:
        detail += f" err={error_code}"
    return detail


@dataclass(frozen=True, slots=True)
class ReceiptIn:
    """A delivery receipt to apply: see `apply_receipt` for the fields."""

    connection: str
    smsc_message_id: str
    state: str
    error_code: int | None
    raw: str


# The batch's statements, compiled once (per IN-list length) and run on the cursor
# (store/fastsql.py).
_FIND_PARTS = FastStatement(
    sa.select(part.c.id, part.c.message_id, part.c.part_no, part.c.smsc_message_id,
              msg.c.connection)
    .join(msg, msg.c.id == part.c.message_id)
    .where(part.c.smsc_message_id.in_(sa.bindparam("cands", expanding=True))))
_MESSAGES = FastStatement(sa.select(msg.c.id, msg.c.status, msg.c.parts).where(
    msg.c.id.in_(sa.bindparam("ids", expanding=True))))
_PART_STATES = FastStatement(sa.select(part.c.message_id, part.c.part_no, part.c.status).where(
    part.c.message_id.in_(sa.bindparam("ids", expanding=True))))
_SET_PART = FastStatement(sa.update(part).where(part.c.id == sa.bindparam("b_id")).values(
    status=sa.bindparam("b_status"), error_code=sa.bindparam("b_err", type_=sa.Integer),
    done_at=sa.bindparam("b_now")))
_SET_MESSAGE = FastStatement(sa.update(msg).where(msg.c.id == sa.bindparam("b_id")).values(
    status=sa.bindparam("b_status"),
    error_code=sa.case((sa.bindparam("b_set_err", type_=sa.Boolean),
                        sa.bindparam("b_err", type_=sa.Integer)), else_=msg.c.error_code),
    updated_at=sa.bindparam("b_now")))
_PARK = FastStatement(pending.insert(), keys=(
    "connection", "smsc_message_id", "state", "error_code", "received_at", "raw"))


def apply_receipts(conn: Connection, items: Sequence[ReceiptIn], *,
                   now: datetime) -> list[int | None]:
    """`apply_receipt` for many receipts at once, in their order: the message id each was
    applied to, or None when kept as pending. About six statements per batch instead of
    about six per receipt (gateway/mt_outcomes.py)."""
    if not items:
        return []
    clean: list[tuple[ReceiptIn, str, int | None]] = []
    for it in items:
        if it.state not in PART_FINAL_STATES:
            raise ValueError(f"receipt state {it.state!r} is not one of "
                             f"{sorted(PART_FINAL_STATES)}")
        err = it.error_code
        if err is not None and not 0 <= err <= _INT32_MAX:
            err = None
        clean.append((it, _storable(it.smsc_message_id)[:SMSC_ID_MAX], err))
    candidates = [smsc_id_candidates(sid) for _, sid, _ in clean]
    every = sorted({c for cs in candidates for c in cs})
    rows = _FIND_PARTS.all(conn, {"cands": every}) if every else []
    by_id: dict[str, list[Row]] = {}
    for r in rows:
        by_id.setdefault(r.smsc_message_id, []).append(r)
    found: list[Row | None] = []
    for (it, _sid, _err), cs in zip(clean, candidates, strict=True):
        matches = [r for c in cs for r in by_id.get(c, ())]
        found.append(min(matches, key=lambda r, cs=cs, it=it: _rank(r, cs, it.connection))
                     if matches else None)
    parked = [
        {"connection": it.connection, "smsc_message_id": normalise_smsc_id(sid),
         "state": it.state, "error_code": err, "received_at": now, "raw": _storable(it.raw)}
        for (it, sid, err), f in zip(clean, found, strict=True) if f is None]
    if parked:
        _PARK.many(conn, parked)
    message_ids = sorted({int(f.message_id) for f in found if f is not None})
    if not message_ids:
        return [None] * len(items)
    messages = {r.id: r for r in _MESSAGES.all(conn, {"ids": message_ids})}
    states: dict[int, dict[int, str]] = {m: {} for m in message_ids}
    for r in _PART_STATES.all(conn, {"ids": message_ids}):
        states[r.message_id][r.part_no] = r.status
    status = {m: messages[m].status for m in message_ids}
    set_err: dict[int, int | None] = {}
    part_rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    out: list[int | None] = []
    # Applied one after the other in memory, exactly as `apply_to_part` would in a row.
    for (it, _sid, err), f in zip(clean, found, strict=True):
        if f is None:
            out.append(None)
            continue
        m = int(f.message_id)
        part_rows.append({"b_id": f.id, "b_status": it.state, "b_err": err, "b_now": now})
        states[m][f.part_no] = it.state
        before = status[m]
        after = _aggregate(before, messages[m].parts, states[m])
        if after != before:
            status[m] = after
            if after in _FAILING:
                set_err[m] = err
        events.append({"direction": "out", "message_id": m, "status": after, "at": now,
                       "detail": _detail(f, messages[m].parts, it.state, err)})
        out.append(m)
    _SET_PART.many(conn, part_rows)
    _SET_MESSAGE.many(conn, [
        {"b_id": m, "b_status": status[m], "b_set_err": m in set_err,
         "b_err": set_err.get(m), "b_now": now} for m in message_ids])
    record_event_rows(conn, events)
    return out


def _rank(r: Row, candidates: list[str], connection: str | None) -> tuple[int, int, int]:
    """`find_part`'s preference: exact spelling, then the receipt's connection, then newest."""
    return (
        candidates.index(r.smsc_message_id),
        0 if connection is not None and r.connection == connection else 1,
        -r.id,
    )


def _storable(text: str) -> str:
    """Text any database accepts: PostgreSQL refuses NUL in text and lone surrogates (which a
    UCS-2 receipt can decode to) cannot be encoded as UTF-8."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _claim(conn: Connection, where: sa.ColumnElement[bool]) -> list[Row]:
    """Delete parked receipts and return them: whoever deletes a row applies it, so two
    instances retrying the same receipt apply it once (PostgreSQL makes the second DELETE
    wait for the first and then find nothing)."""
    rows = conn.execute(
        sa.delete(pending).where(where).returning(
            pending.c.id, pending.c.state, pending.c.error_code)
    ).all()
    return sorted(rows, key=lambda r: r.id)


def _apply_claimed(conn: Connection, found: Row, rows: Sequence[Row], *, now: datetime) -> None:
    for r in rows:
        apply_to_part(conn, found, state=r.state, error_code=r.error_code, now=now)
    if rows:
        # The receipt may have made the message final: owe its application the receipt too
        # (a no-op for messages that did not come from an upstream application).
        upstream.owe_receipt(conn, int(found.message_id), now=now)


def apply_pending_for(conn: Connection, found: Row, *, now: datetime) -> int:
    """Apply (and remove) receipts that arrived before ``found``'s SMSC id was stored."""
    rows = _claim(conn, pending.c.smsc_message_id.in_(smsc_id_candidates(found.smsc_message_id)))
    _apply_claimed(conn, found, rows, now=now)
    return len(rows)


@dataclass(frozen=True, slots=True)
class Retried:
    matched: list[int]  # message ids that got a parked receipt applied
    scanned: int  # parked receipts looked at
    last_id: int | None  # highest pending id looked at (to page with `after_id`)


def retry_pending(
    conn: Connection,
    *,
    now: datetime,
    since: datetime | None = None,
    after_id: int = 0,
    limit: int = 500,
) -> Retried:
    """Match parked receipts again: up to `limit` of them, by id above `after_id`, received at
    or after `since` when given. One query finds which parked ids now have a part, so a
    table full of ids we never sent costs one look-up per page, not one per receipt."""
    query = sa.select(pending.c.id, pending.c.connection, pending.c.smsc_message_id).where(
        pending.c.id > after_id)
    if since is not None:
        query = query.where(pending.c.received_at >= since)
    rows = conn.execute(query.order_by(pending.c.id).limit(limit)).all()
    if not rows:
        return Retried([], 0, None)
    candidates = {r.id: smsc_id_candidates(r.smsc_message_id) for r in rows}
    known = set(conn.execute(
        sa.select(part.c.smsc_message_id).where(
            part.c.smsc_message_id.in_(sorted({c for cs in candidates.values() for c in cs})))
    ).scalars())
    matched: list[int] = []
    for r in rows:
        if known.isdisjoint(candidates[r.id]):
            continue
        found = find_part(conn, r.smsc_message_id, connection=r.connection)
        if found is None:
            continue
        claimed = _claim(conn, pending.c.id == r.id)
        _apply_claimed(conn, found, claimed, now=now)
        if claimed:
            matched.append(int(found.message_id))
    return Retried(matched, len(rows), int(rows[-1].id))


def unmatched_before(conn: Connection, cutoff: datetime, *,
                     limit: int = 20) -> tuple[int, list[Row]]:
    """How many parked receipts were received before `cutoff`, and the oldest `limit` of them
    (id, connection, smsc_message_id, state, received_at) for a log line or the API."""
    count = conn.execute(sa.select(sa.func.count()).select_from(pending)
                         .where(pending.c.received_at < cutoff)).scalar_one()
    oldest = conn.execute(
        sa.select(pending.c.id, pending.c.connection, pending.c.smsc_message_id,
                  pending.c.state, pending.c.received_at)
        .where(pending.c.received_at < cutoff).order_by(pending.c.id).limit(limit)).all()
    return int(count), list(oldest)
