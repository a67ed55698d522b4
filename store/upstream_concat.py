"""Concatenated submits from upstream applications: parts stored durably, joined into one MT.

An application splits a long text into parts (UDH or sar_* TLVs) and submits each. Every part
is written here before its submit_sm_resp and gets its own message_id (`part_message_id`); the
part that completes its group enqueues ONE outbound message with the whole text, in the same
transaction (our dispatcher splits it again as the route needs). Parts may come in any order
and across a gateway restart. A repeated part of a group still open is taken once and answered
with the id it got before; a finished group frees its reference, since 8-bit references wrap
after 256 messages. A group still incomplete after the reassembly timeout expires: each part
that asked for one is owed a failure receipt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# upstream imports this module too: both only use each other's names at call time.
from store import outbound, upstream
from store.events import dialect_insert
from store.models_upstream import upstream_concat_groups as groups
from store.models_upstream import upstream_concat_parts as parts

_PART_ID = re.compile(r"^c(\d+)-(\d+)$")


def part_message_id(group_id: int, seq: int) -> str:
    """The message_id an application gets for one part: 'c<group>-<seq>'. The prefix keeps it
    apart from our MT ids (digits only), which single-part submits get."""
    return f"c{group_id}-{seq}"


def parse_part_message_id(message_id: str) -> tuple[int, int] | None:
    m = _PART_ID.match(message_id.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class PartAccepted:
    message_id: str  # for the submit_sm_resp
    group_id: int
    repeated: bool  # this part was already stored: nothing changed
    received: int  # parts of the group stored so far
    total: int
    mt_id: int | None  # the joined MT, when this part completed the group


# Turns the parts' (user data, data_coding), in order, into the whole text. The store does
# not decode SMS itself: the caller passes gateway.smpp.text.join_parts.
JoinText = Callable[[Sequence[tuple[bytes, int]]], str]


def add_part(conn: Connection, *, system_id: str, source_addr: str, dest_addr: str,
             ref: int, total: int, seq: int, data_coding: int, payload: bytes, text: str,
             registered_delivery: bool, priority: int, schedule_at: datetime | None,
             expires_at: datetime | None, now: datetime, join_text: JoinText) -> PartAccepted:
    """Store one part; join the group into an MT when it is the last one missing.

    ``text`` is this part decoded alone (for its receipt's text: field and for logs)."""
    open_key = f"{system_id}|{source_addr}|{dest_addr}|{ref}|{total}"
    group_id = _open_group(conn, open_key, values=dict(
        system_id=system_id, source_addr=source_addr, dest_addr=dest_addr, ref=ref,
        total=total, open_key=open_key, status="open", priority=priority,
        schedule_at=schedule_at, expires_at=expires_at, created_at=now))
    message_id = part_message_id(group_id, seq)
    if conn.execute(sa.select(parts.c.id).where(parts.c.group_id == group_id,
                                                parts.c.seq == seq)).first() is not None:
        received = _count(conn, group_id)
        return PartAccepted(message_id, group_id, True, received, total, None)
    conn.execute(parts.insert().values(
        group_id=group_id, seq=seq, data_coding=data_coding, payload=payload, text=text,
        registered_delivery=registered_delivery, received_at=now))
    received = _count(conn, group_id)
    mt_id = _join(conn, group_id, now=now, join_text=join_text) if received == total else None
    return PartAccepted(message_id, group_id, False, received, total, mt_id)


def _open_group(conn: Connection, open_key: str, *, values: dict[str, object]) -> int:
    """The open group's id, created if needed, its row locked until this transaction ends.

    Parts of one message may reach two instances at once: the lock makes the second wait for
    the first's commit, so the later one counts both parts and joins the group (without it,
    each would count only its own part and neither would join). ON CONFLICT, not an
    IntegrityError, when both create the group: an error would abort the writer's batch.
    """
    created = conn.execute(dialect_insert(conn, groups).values(**values)
                           .on_conflict_do_nothing(index_elements=["open_key"])
                           .returning(groups.c.id)).scalar_one_or_none()
    if created is not None:
        return int(created)
    q = sa.select(groups.c.id).where(groups.c.open_key == open_key)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    return int(conn.execute(q).scalar_one())


def _count(conn: Connection, group_id: int) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(parts)
                            .where(parts.c.group_id == group_id)).scalar_one())


def _join(conn: Connection, group_id: int, *, now: datetime, join_text: JoinText) -> int:
    group = conn.execute(sa.select(groups).where(groups.c.id == group_id)).one()
    rows = conn.execute(sa.select(parts).where(parts.c.group_id == group_id)
                        .order_by(parts.c.seq)).all()
    text = join_text([(bytes(r.payload), r.data_coding) for r in rows])
    mt_id = outbound.enqueue_mt(
        conn, dest_addr=group.dest_addr, text=text, priority=group.priority, now=now,
        source_addr=group.source_addr or None, schedule_at=group.schedule_at,
        expires_at=group.expires_at,
        registered_delivery=any(r.registered_delivery for r in rows), upstream=group.system_id)
    conn.execute(sa.update(groups).where(groups.c.id == group_id).values(
        status="joined", open_key=None, message_id=mt_id, closed_at=now))
    return mt_id


@dataclass(frozen=True)
class ExpiredGroup:
    group_id: int
    system_id: str
    dest_addr: str
    received: list[int]  # seq numbers that did arrive
    total: int
    receipts_owed: int


def has_expired(conn: Connection, *, older_than: datetime) -> bool:
    """Is any group opened before ``older_than`` still incomplete? (a cheap read first)"""
    return conn.execute(sa.select(groups.c.id).where(
        groups.c.status == "open", groups.c.created_at < older_than).limit(1)).first() is not None


def expire(conn: Connection, *, older_than: datetime, now: datetime,
           limit: int = 500) -> list[ExpiredGroup]:
    """Groups opened before ``older_than`` and still incomplete: close them and owe each part
    that asked for a receipt a failure receipt (stat UNDELIV)."""
    candidates = conn.execute(
        sa.select(groups.c.id).where(groups.c.status == "open", groups.c.created_at < older_than)
        .order_by(groups.c.id).limit(limit)).scalars().all()
    out: list[ExpiredGroup] = []
    for group_id in candidates:
        # The status guard: another instance may have joined or expired it meanwhile.
        done = conn.execute(sa.update(groups).where(groups.c.id == group_id,
                                                    groups.c.status == "open")
                            .values(status="expired", open_key=None, closed_at=now)
                            .returning(groups.c.system_id, groups.c.dest_addr,
                                       groups.c.source_addr, groups.c.total,
                                       groups.c.created_at)).first()
        if done is None:
            continue
        rows = conn.execute(sa.select(parts).where(parts.c.group_id == group_id)
                            .order_by(parts.c.seq)).all()
        owed = 0
        for r in rows:
            if not r.registered_delivery:
                continue
            missing = done.total - len(rows)
            upstream.owe_part_receipt(
                conn, system_id=done.system_id, receipt_for=part_message_id(group_id, r.seq),
                status="failed", dest_addr=done.dest_addr, source_addr=done.source_addr,
                submitted_at=r.received_at, now=now,
                text=r.text,
                error_text=f"{missing} of {done.total} parts never arrived")
            owed += 1
        out.append(ExpiredGroup(group_id, done.system_id, done.dest_addr,
                                [r.seq for r in rows], done.total, owed))
    return out


def group_state(conn: Connection, group_id: int) -> tuple[str, int | None] | None:
    """(status, joined MT id) of a group, for query_sm on a part's id."""
    row = conn.execute(sa.select(groups.c.status, groups.c.message_id)
                       .where(groups.c.id == group_id)).first()
    return (row.status, row.message_id) if row else None
