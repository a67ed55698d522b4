"""Inbound (MO) messages: persisted before deliver_sm_resp, processed exactly once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from commands.secrets import mask_parts
from gateway.smpp import text as smstext
from store.events import dialect_insert, record_event
from store.fastsql import FastStatement
from store.models import inbound_messages as mo
from store.models import outbound_messages as mt

PRIORITY_REPLY = 1  # outbound priority of a reply to an MO (design.md)


# The hot path's statements, compiled once per dialect and run on the raw cursor
# (store/fastsql.py): SQLAlchemy's per-execution work was most of the writer's time.
_MO_COLUMNS = ("connection", "dedup_key", "source_addr", "dest_addr", "text", "data_coding",
               "esm_class", "short_message", "received_at", "status", "concat_ref",
               "concat_total", "concat_seq", "content_key", "duplicate_of", "ack_session")
_MO_INSERT = FastStatement(lambda conn: (
    dialect_insert(conn, mo).values({c: sa.bindparam(c) for c in _MO_COLUMNS})
    .on_conflict_do_nothing(index_elements=["connection", "dedup_key"])
    .returning(mo.c.id)))
_LATEST_BY_CONTENT = FastStatement(
    sa.select(mo.c.id, mo.c.duplicate_of, mo.c.ack_confirmed, mo.c.received_at)
    .where(mo.c.content_key == sa.bindparam("content_key"))
    .order_by(mo.c.id.desc())
    .limit(1)
)
_FIND = FastStatement(sa.select(mo.c.id).where(
    mo.c.connection == sa.bindparam("connection"), mo.c.dedup_key == sa.bindparam("dedup_key")))
_GET = FastStatement(sa.select(mo).where(mo.c.id == sa.bindparam("b_id")))
# A row lock, not a write: the dummy UPDATE this was wrote a new version of the row and of
# its five index entries on PostgreSQL for every MO (SQLite, one writer, ignores FOR UPDATE).
_CLAIM = FastStatement(sa.select(mo.c.id).where(
    mo.c.id.in_(sa.bindparam("ids", expanding=True)), mo.c.status == "received")
    .with_for_update())
_PROCESSED = FastStatement(
    sa.update(mo).where(mo.c.id == sa.bindparam("b_id"), mo.c.status == "received")
    .values(status="processed", processed_at=sa.bindparam("b_now"),
            command=sa.bindparam("b_command"), error=None,
            disposition=sa.bindparam("b_disposition")))
_TO_MASK = FastStatement(
    sa.select(mo.c.id, mo.c.text, mo.c.short_message, mo.c.data_coding, mo.c.esm_class)
    .where(mo.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(mo.c.concat_seq, mo.c.id))
_MASK_ONE = FastStatement(sa.update(mo).where(mo.c.id == sa.bindparam("b_id")).values(
    text=sa.bindparam("text"), short_message=sa.bindparam("short_message")))
_MASK_REDELIVERIES = FastStatement(
    sa.update(mo).where(mo.c.duplicate_of == sa.bindparam("b_id")).values(
        text=sa.bindparam("text"), short_message=sa.bindparam("short_message")))
_CONCAT_PARTS = FastStatement(
    sa.select(mo.c.id, mo.c.concat_seq, mo.c.text, mo.c.received_at)
    .where(mo.c.source_addr == sa.bindparam("source_addr"),
           mo.c.concat_ref == sa.bindparam("ref"),
           mo.c.dest_addr == sa.bindparam("dest_addr"),
           mo.c.concat_total == sa.bindparam("total"),
           mo.c.status == "received", mo.c.duplicate_of.is_(None),
           mo.c.received_at >= sa.bindparam("since"))
    .order_by(mo.c.id))


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
    content_key: str | None = None,
    duplicate_of: int | None = None,
    ack_session: str | None = None,
) -> tuple[int, bool]:
    """Store an MO; returns (id, is_new). A redelivery returns the first copy's id and False.

    ON CONFLICT DO NOTHING rather than catching IntegrityError: a failed INSERT would abort
    the surrounding (group-committed) transaction on PostgreSQL.
    """
    new_id = _MO_INSERT.scalar(conn, {
        "connection": connection,
        "dedup_key": dedup_key,
        "source_addr": source_addr,
        "dest_addr": dest_addr,
        "text": text,
        "data_coding": data_coding,
        "esm_class": esm_class,
        "short_message": short_message,
        "received_at": now,
        "status": "received",
        # (reference, total, sequence) of a concatenated part, so that parts waiting for
        # their siblings can be re-held after a restart.
        "concat_ref": concat[0] if concat else None,
        "concat_total": concat[1] if concat else None,
        "concat_seq": concat[2] if concat else None,
        "content_key": content_key,
        "duplicate_of": duplicate_of,
        "ack_session": ack_session,
    })
    if new_id is not None:
        record_event(conn, "in", new_id, "received", now=now)
        return new_id, True
    existing = find_mo(conn, connection=connection, dedup_key=dedup_key)
    assert existing is not None  # the conflict that skipped our insert is this row
    return existing, False


def find_mo(conn: Connection, *, connection: str, dedup_key: str) -> int | None:
    """The id of an MO already stored under this key (a redelivery check)."""
    return _FIND.scalar(conn, {"connection": connection, "dedup_key": dedup_key})  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class StoredIdentity:
    """Where `store_mo` put an MO: its row, and the original it repeats when the SMSC is
    redelivering it (None for a new message)."""

    id: int
    duplicate_of: int | None


def store_mo(
    conn: Connection,
    *,
    connection: str,
    content_key: str,
    smsc_message_id: str | None,
    horizon: timedelta,
    now: datetime,
    **fields: object,
) -> StoredIdentity:
    """Store an MO and decide whether it is an SMSC redelivery (gateway/inbound.py, the rule).

    - With an SMSC message id the id decides: the same id on the same connection is the same
      message, however late.
    - Without one, the latest identical MO (same content_key) received within `horizon` is
      the predecessor. If its ack is confirmed (the SMSC surely got our deliver_sm_resp, so
      it has no reason to send it again) this one is a person's new message; if not, it is a
      redelivery of the predecessor's original.

    Every MO gets a row (redeliveries too: operators see them). Claims are unique keys, so
    two instances storing the same MO at once agree: a new message claims
    ``new:<digest>:<predecessor id>``; the loser of that race is a redelivery of the winner.
    """
    def insert(dedup_key: str, duplicate_of: int | None) -> tuple[int, bool]:
        return insert_mo(conn, connection=connection, dedup_key=dedup_key, now=now,
                         content_key=content_key, duplicate_of=duplicate_of,
                         **fields)  # type: ignore[arg-type]

    def redelivery_of(existing_id: int) -> StoredIdentity:
        row = get_mo(conn, existing_id)
        assert row is not None
        original = row.duplicate_of if row.duplicate_of is not None else row.id
        new_id, _ = insert(f"dup:{original}:{_unique()}", original)
        return StoredIdentity(new_id, original)

    if smsc_message_id:
        new_id, is_new = insert(f"smsc-id:{smsc_message_id}", None)
        return StoredIdentity(new_id, None) if is_new else redelivery_of(new_id)
    latest = _LATEST_BY_CONTENT.one_or_none(conn, {"content_key": content_key})
    if latest is not None and not latest.ack_confirmed and latest.received_at >= now - horizon:
        return redelivery_of(latest.id)
    # The predecessor's id (even one past the horizon) keeps the claim key unique.
    claim = f"new:{content_key}:{latest.id if latest is not None else 0}"
    new_id, is_new = insert(claim, None)
    return StoredIdentity(new_id, None) if is_new else redelivery_of(new_id)


def _unique() -> str:
    return uuid.uuid4().hex


def store_receipt_without_id(conn: Connection, *, now: datetime, **fields: object) -> int:
    """A deliver_sm flagged as a receipt but carrying no id: kept for operators, final."""
    new_id, _ = insert_mo(conn, dedup_key=f"receipt:{_unique()}", now=now,
                          **fields)  # type: ignore[arg-type]
    mark_mo_processed(conn, new_id, command=None, disposition="receipt_without_id", now=now)
    return new_id


def confirm_acks(conn: Connection, ids: list[int]) -> int:
    """The SMSC surely got these MOs' deliver_sm_resp (their session outlived its timeout)."""
    if not ids:
        return 0
    return conn.execute(
        sa.update(mo).where(mo.c.id.in_(ids)).values(ack_confirmed=True)
    ).rowcount


def replies_to(conn: Connection, mo_id: int) -> list[str]:
    """The reply texts queued for an MO, in order (what a replay sends again)."""
    return list(conn.execute(
        sa.select(mt.c.text)
        .where(mt.c.in_reply_to == mo_id, mt.c.priority == PRIORITY_REPLY)
        .order_by(mt.c.id)
    ).scalars())


def claim_mos(conn: Connection, ids: list[int]) -> bool:
    """Take these received MOs for processing in this transaction, or False when another
    worker already finished them. On PostgreSQL SELECT … FOR UPDATE locks the rows, so a
    concurrent claimer waits for our commit and then finds them processed (READ COMMITTED
    checks the WHERE again on the row it waited for): no effect twice."""
    return len(_CLAIM.all(conn, {"ids": ids})) == len(set(ids))


def mark_mo_processed(conn: Connection, id: int, *, command: str | None, now: datetime,
                      disposition: str | None = None, mask: bool = True) -> bool:
    """Final state of a received MO; False when it was already final (another worker won).
    ``mask=False``: the caller masks the message's secrets itself (all its parts at once)."""
    done = _PROCESSED.run(conn, {"b_id": id, "b_now": now, "b_command": command,
                                 "b_disposition": disposition})
    if done:
        record_event(conn, "in", id, "processed", now=now,
                     detail=" ".join(x for x in (disposition, command) if x) or None)
        if mask:
            mask_secrets(conn, [id])
    return bool(done)


def mark_mo_failed(conn: Connection, id: int, *, error: str, now: datetime) -> None:
    conn.execute(
        sa.update(mo).where(mo.c.id == id)
        .values(status="failed", processed_at=now, error=error, disposition="failed")
    )
    record_event(conn, "in", id, "failed", now=now, detail=error)
    mask_secrets(conn, [id])


def mask_secrets(conn: Connection, ids: list[int], *, whole: str | None = None) -> None:
    """Mask PINs and CFM codes (commands/secrets.py) in these MOs' stored text and raw user
    data, as one message (the parts of a long message, any order), and in every stored
    redelivery of them.

    Called in the transaction that makes the MO final, never before: until then the clear
    text is what `MoProcessor.recover` processes after a crash. From that commit on nothing
    of the secret is left in the row; a part settled before its siblings is masked again
    with the whole message when that is processed.

    ``whole``: the message's text (its parts joined in order), when the caller has it: a
    text without a secret needs no read (most MOs carry none).
    """
    if whole is not None and mask_parts([whole]) == [whole]:
        return
    rows = _TO_MASK.all(conn, {"ids": ids})
    masked = mask_parts([r.text for r in rows])
    for row, text in zip(rows, masked, strict=True):
        if text == row.text:
            continue
        values = {"b_id": row.id, "text": text, "short_message": _masked_user_data(row, text)}
        # Two statements, each on an index (an OR of the two scanned the whole table).
        _MASK_ONE.run(conn, values)
        _MASK_REDELIVERIES.run(conn, values)


def _masked_user_data(row: Row, text: str) -> bytes:
    """The raw user data carrying the masked text: same UDH, same data coding. A coding we
    cannot encode keeps the UDH only (the secret must not survive in the raw column)."""
    raw = bytes(row.short_message or b"")
    _concat, payload = smstext.parse_udh(raw, row.esm_class)
    header = raw[:len(raw) - len(payload)]
    scheme = smstext.data_coding_scheme(row.data_coding)
    try:
        body = (smstext.gsm7_encode(text) if scheme.codec == "gsm7"
                else text.encode(scheme.codec))
    except (ValueError, LookupError):  # NotGsm7 and UnicodeEncodeError are ValueErrors
        body = b""
    return header + body


def unprocessed_mos(conn: Connection, limit: int) -> list[Row]:
    """MOs stored but not yet processed (e.g. after a crash), oldest first."""
    return list(
        conn.execute(
            sa.select(mo).where(mo.c.status == "received").order_by(mo.c.id).limit(limit)
        ).all()
    )


def get_mo(conn: Connection, id: int) -> Row | None:
    return _GET.one_or_none(conn, {"b_id": id})  # type: ignore[no-any-return]


# -- long MOs: parts found in the store, whichever instance stored them --------------------------


def concat_parts(conn: Connection, *, source_addr: str, dest_addr: str, ref: int, total: int,
                 since: datetime) -> list[Row]:
    """The received, not yet processed original parts of one long MO, oldest first.

    Keyed by (source, dest, reference, total) and not by connection: the SMSC may hand the
    parts of one message to different binds, and those may belong to different instances.
    The reference is the sending handset's, so it tells its messages apart on every bind.
    """
    return _CONCAT_PARTS.all(conn, {"source_addr": source_addr, "ref": ref,
                                    "dest_addr": dest_addr, "total": total, "since": since})


@dataclass(frozen=True, slots=True)
class StaleGroup:
    source_addr: str
    dest_addr: str
    ref: int
    total: int
    parts: list[Row]  # (id, concat_seq, text, received_at), oldest first


def stale_concat_groups(conn: Connection, *, older_than: datetime, limit: int = 500
                        ) -> list[StaleGroup]:
    """Long MOs still waiting for a part, none of whose parts came after ``older_than``.

    The wait counts from the newest part: an SMSC slowed down (or redelivering late acks)
    hands parts over minutes apart, and a message still arriving is not given up on.
    """
    waiting = (mo.c.status == "received", mo.c.concat_total > 1, mo.c.duplicate_of.is_(None))
    group = (mo.c.source_addr, mo.c.dest_addr, mo.c.concat_ref, mo.c.concat_total)
    # Decided over every waiting part of a group (not a page of parts, which could leave its
    # newest part out), then the parts of those groups.
    stale = (sa.select(*group).where(*waiting).group_by(*group)
             .having(sa.func.max(mo.c.received_at) < older_than).limit(limit).subquery())
    rows = conn.execute(
        sa.select(mo.c.id, *group, mo.c.concat_seq, mo.c.text, mo.c.received_at)
        .join(stale, sa.and_(*(c == stale.c[c.name] for c in group)))
        .where(*waiting).order_by(mo.c.id)).all()
    groups: dict[tuple[str, str, int, int], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.source_addr, r.dest_addr, r.concat_ref, r.concat_total),
                          []).append(r)
    return [StaleGroup(*key, parts) for key, parts in groups.items()]
