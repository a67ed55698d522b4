"""Notices the system sends by itself: windows and quiet hours, the durable event log, the
scheduler's slot claims and broadcasts (issue 4, parts 1 and 6-8).

Everything a notice or broadcast queues goes through `enqueue_notice` (one message) or
`enqueue_notices` (a broadcast chunk), so the recipient's window and the global quiet hours
are applied in one place: a message outside them is queued with ``schedule_at`` set to the
moment they open, and the queue (which honours ``schedule_at``) sends it then.

Like the other repositories, these functions never commit; the caller's transaction decides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store import outbound
from store.events import dialect_insert, record_events
from store.models import (
    BROADCAST_TARGETS,
    PRIORITY_BULK,
    accounts,
    broadcasts,
    events,
    group_members,
    groups,
    job_runs,
    opt_outs,
    outbound_messages,
    subscriptions,
    topics,
)

# A window is (start, end) local wall-clock times, [start, end); end <= start wraps midnight.
Window = tuple[time, time]
WindowSpec = tuple[str | int | time | None, str | int | time | None]

_HHMM = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*$")


def _service_tz() -> tzinfo:
    # The one service clock (commands/clock.py, SMSGW_TZ), read at call time so tests that
    # pin it are honoured.
    from commands import clock

    return clock.SERVICE_TZ


# ---------------------------------------------------------------------------------------------
# Windows and quiet hours
# ---------------------------------------------------------------------------------------------


def _to_time(value: str | int | time) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # subscriptions keep whole hours; 24 means midnight
        if not 0 <= value <= 24:
            raise ValueError(f"hour {value} outside 0..24")
        return time(value % 24)
    m = _HHMM.match(value)
    if not m:
        raise ValueError(f"not a time of day (HH:MM): {value!r}")
    h, mi = int(m.group(1)), int(m.group(2) or 0)
    if h == 24 and mi == 0:
        return time(0)
    if not (0 <= h <= 23 and 0 <= mi <= 59):
        raise ValueError(f"not a time of day (HH:MM): {value!r}")
    return time(h, mi)


def parse_window(spec: WindowSpec | Window | str | None) -> Window | None:
    """("08:00", "21:00"), (8, 21) or "08:00-21:00" → (time, time); None = no restriction.

    A missing side means the start (00:00) or the end (24:00) of the day; equal ends mean the
    whole day (no restriction).
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        if not spec.strip() or spec.strip().lower() in ("off", "none", "-"):
            return None
        start_s, sep, end_s = spec.partition("-")
        if not sep:
            raise ValueError(f"window must be HH:MM-HH:MM, got {spec!r}")
        spec = (start_s, end_s)
    start, end = spec
    if start is None and end is None:
        return None
    lo = _to_time(start) if start is not None else time(0)
    hi = _to_time(end) if end is not None else time(0)
    if lo == hi:
        return None
    return lo, hi


def parse_quiet_hours(value: str | None) -> Window | None:
    """SMSGW_QUIET_HOURS, e.g. "21:00-08:00"; empty / "off" = no quiet hours."""
    return parse_window(value)


def in_window(t: time, window: Window) -> bool:
    lo, hi = window
    if lo < hi:
        return lo <= t < hi
    return t >= lo or t < hi  # wraps past midnight (hi == 00:00 means "until midnight")


def hold_until(
    now: datetime,
    *,
    priority: int,
    recipient_window: WindowSpec | Window | str | None,
    quiet_hours: WindowSpec | Window | str | None,
    tz: tzinfo | None = None,
) -> datetime | None:
    """When a message queued at ``now`` may first be sent, or None when it may go now.

    Priorities 0 (alerts) and 1 (replies) are never held. The recipient's window holds
    priorities 2 and 3; the global quiet hours hold priority 3 only. Times are judged in the
    service's local time (``tz``, default SMSGW_TZ); the answer is in ``now``'s zone.
    """
    if priority <= 1:
        return None
    window = parse_window(recipient_window)
    quiet = parse_window(quiet_hours) if priority >= 3 else None
    if window is None and quiet is None:
        return None
    zone = tz or _service_tz()
    local_now = now.astimezone(zone)

    def allowed(t: datetime) -> bool:
        tt = t.astimezone(zone).time()
        if window is not None and not in_window(tt, window):
            return False
        return quiet is None or not in_window(tt, quiet)

    if allowed(local_now):
        return None
    # The first allowed moment is a boundary: a window opening or the end of quiet hours.
    opens = {t for t in (window[0] if window else None, quiet[1] if quiet else None)
             if t is not None}
    candidates = sorted(
        datetime.combine(local_now.date() + timedelta(days=d), t, zone)
        for d in range(0, 3)
        for t in opens
    )
    for c in candidates:
        if c > local_now and allowed(c):
            return c.astimezone(now.tzinfo)
    # Window entirely inside quiet hours: the recipient's window wins.
    assert window is not None
    nxt = datetime.combine(local_now.date(), window[0], zone)
    if nxt <= local_now:
        nxt += timedelta(days=1)
    return nxt.astimezone(now.tzinfo)


@dataclass(frozen=True, slots=True)
class NoticePolicy:
    """What every notice enqueue needs besides the message: the short code it comes from,
    the global quiet hours (priority 3) and the service time zone (None = SMSGW_TZ)."""

    source_addr: str | None = None
    quiet_hours: Window | None = None
    tz: tzinfo | None = None


DEFAULT_POLICY = NoticePolicy()


def enqueue_notice(
    conn: Connection,
    *,
    to: str,
    text: str,
    priority: int,
    now: datetime,
    window: WindowSpec | Window | str | None = None,
    broadcast_id: int | None = None,
    schedule_at: datetime | None = None,
    expires_at: datetime | None = None,
    policy: NoticePolicy = DEFAULT_POLICY,
) -> int:
    """Queue one notice, held until the recipient's window (and quiet hours) open."""
    due = max(now, schedule_at) if schedule_at is not None else now
    held = hold_until(due, priority=priority, recipient_window=window,
                      quiet_hours=policy.quiet_hours, tz=policy.tz)
    at = held or schedule_at
    mt_id = outbound.enqueue_mt(conn, dest_addr=to, text=text, priority=priority, now=now,
                                source_addr=policy.source_addr, schedule_at=at,
                                expires_at=expires_at)
    if broadcast_id is not None:
        conn.execute(sa.update(outbound_messages).where(outbound_messages.c.id == mt_id)
                     .values(broadcast_id=broadcast_id))
    return mt_id


@dataclass(frozen=True, slots=True)
class Recipient:
    phone: str
    window: Window | None = None


def enqueue_notices(
    conn: Connection,
    recipients: Sequence[Recipient],
    *,
    text: str,
    priority: int,
    now: datetime,
    broadcast_id: int | None = None,
    schedule_at: datetime | None = None,
    policy: NoticePolicy = DEFAULT_POLICY,
) -> list[int]:
    """`enqueue_notice` for many recipients in two statements (a broadcast chunk).

    Writes the same columns and 'queued' history row as `outbound.enqueue_mt`, in bulk.
    """
    if not 0 <= priority <= 3:
        raise ValueError(f"priority must be 0..3, got {priority}")
    if not recipients:
        return []
    due = max(now, schedule_at) if schedule_at is not None else now
    cache: dict[Window | None, datetime | None] = {}
    rows = []
    for r in recipients:
        if r.window not in cache:
            cache[r.window] = hold_until(due, priority=priority, recipient_window=r.window,
                                         quiet_hours=policy.quiet_hours, tz=policy.tz)
        rows.append({
            "priority": priority, "source_addr": policy.source_addr, "dest_addr": r.phone,
            "text": text, "status": "queued", "schedule_at": cache[r.window] or schedule_at,
            "expires_at": None, "created_at": now, "updated_at": now, "in_reply_to": None,
            "registered_delivery": True, "broadcast_id": broadcast_id,
        })
    ids = list(conn.execute(
        outbound_messages.insert().returning(outbound_messages.c.id,
                                             sort_by_parameter_order=True), rows).scalars())
    record_events(conn, "out", ids, "queued", now=now,
                  detail=f"broadcast {broadcast_id}" if broadcast_id is not None else None)
    return ids


def account_window(account: Row | None) -> Window | None:
    if account is None:
        return None
    try:
        return parse_window((account.notify_window_start, account.notify_window_end))
    except ValueError:
        return None  # a malformed window never blocks a notice


def subscription_window(sub: Row | None) -> Window | None:
    if sub is None:
        return None
    try:
        return parse_window((sub.window_start, sub.window_end))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Durable events
# ---------------------------------------------------------------------------------------------


def raise_event(conn: Connection, type_: str, payload: Mapping[str, Any], now: datetime) -> int:
    """Record an event; the notice processor turns it into notices after the commit. Its
    webhook subscribers are owed it in the same transaction (store/webhooks.py)."""
    from store.webhooks import owe_event

    event_id = int(conn.execute(
        events.insert().values(type=type_, payload=json.dumps(dict(payload), default=str),
                               created_at=now).returning(events.c.id)
    ).scalar_one())
    owe_event(conn, type_, {"event_id": event_id, **payload}, ref=f"event-{event_id}", now=now)
    return event_id


def pending_event_ids(conn: Connection, limit: int = 100) -> list[int]:
    q = (sa.select(events.c.id).where(events.c.processed_at.is_(None))
         .order_by(events.c.id).limit(limit))
    return list(conn.execute(q).scalars())


def lock_pending_event(conn: Connection, event_id: int) -> Row | None:
    """The event if it is still unprocessed, locked for this transaction (PostgreSQL skips
    an event another instance holds; SQLite's single writer serialises)."""
    q = sa.select(events).where(events.c.id == event_id, events.c.processed_at.is_(None))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return conn.execute(q).first()


def mark_event(conn: Connection, event_id: int, *, now: datetime, error: str | None = None,
               notice_ids: Sequence[int] = ()) -> None:
    conn.execute(sa.update(events).where(events.c.id == event_id)
                 .values(processed_at=now, error=error,
                         notice_ids=None if error else json.dumps(list(notice_ids))))


def retry_event(conn: Connection, event_id: int) -> bool:
    """Make a failed event pending again (after fixing the configuration, say)."""
    done = conn.execute(sa.update(events).where(events.c.id == event_id,
                                                events.c.error.is_not(None))
                        .values(processed_at=None, error=None, notice_ids=None))
    return done.rowcount > 0


def get_event(conn: Connection, event_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["payload"] = json.loads(row.payload)
    out["notice_ids"] = json.loads(row.notice_ids) if row.notice_ids else []
    return out


# ---------------------------------------------------------------------------------------------
# Scheduler slots
# ---------------------------------------------------------------------------------------------


def last_slot(conn: Connection, job: str) -> str | None:
    return conn.execute(sa.select(job_runs.c.last_slot).where(job_runs.c.job == job)).scalar()


def claim_slot(conn: Connection, job: str, slot: str, *, now: datetime) -> bool:
    """Record ``slot`` as the job's last run unless it (or a later slot) already is.

    True when this transaction claimed it: the job's work then goes in the same transaction,
    so the claim and the notices commit together or not at all. Slots of one job compare as
    strings ("2026-11-24", "2026-W48": fixed width, so string order is time order).
    """
    stmt = dialect_insert(conn, job_runs).values(job=job, last_slot=slot, last_run_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["job"], set_={"last_slot": slot, "last_run_at": now},
        where=job_runs.c.last_slot < slot,
    ).returning(job_runs.c.job)
    return conn.execute(stmt).first() is not None


# ---------------------------------------------------------------------------------------------
# Broadcasts
# ---------------------------------------------------------------------------------------------

SEGMENT_FILTERS = ("region", "role", "route", "value_band")
BROADCAST_CHUNK = 1000


def create_broadcast(
    conn: Connection,
    *,
    name: str,
    target_kind: str,
    target: Any,
    text: str,
    now: datetime,
    priority: int = PRIORITY_BULK,
    schedule_at: datetime | None = None,
    created_by: str | None = None,
    service_number: str | None = None,
) -> int:
    """A broadcast waiting to run ('scheduled'); it runs at ``schedule_at`` (None = now),
    its messages from ``service_number`` (None: the policy's number, SMSGW_SOURCE_ADDR).

    target: group → "name" or {"group": name}; segment → {"region"|"role"|"route"|
    "value_band": value or [values]}; topic → "CODE" or {"topic": code}; list → [numbers]
    or {"numbers": [...]}.
    """
    if target_kind not in BROADCAST_TARGETS:
        raise ValueError(f"target_kind must be one of {BROADCAST_TARGETS}, got {target_kind!r}")
    if not 0 <= priority <= 3:
        raise ValueError(f"priority must be 0..3, got {priority}")
    if not text.strip():
        raise ValueError("broadcast text is empty")
    spec = target_spec(target_kind, target)
    return int(conn.execute(broadcasts.insert().values(
        name=name, target_kind=target_kind, target=json.dumps(spec, ensure_ascii=False),
        text=text, priority=priority, schedule_at=schedule_at, status="scheduled",
        created_by=created_by, created_at=now, updated_at=now, service_number=service_number,
    ).returning(broadcasts.c.id)).scalar_one())


def target_spec(kind: str, target: Any) -> dict[str, Any]:
    """A broadcast target in the shape stored with it (and given to `expand_recipients`):
    {"group": name}, {"topic": CODE}, {"numbers": [...]} or {filter: [values]}; ValueError
    says what is missing or unknown."""
    if kind == "group":
        name = target.get("group") if isinstance(target, Mapping) else target
        if not isinstance(name, str) or not name:
            raise ValueError("group broadcast needs a group name")
        return {"group": name}
    if kind == "topic":
        code = target.get("topic") if isinstance(target, Mapping) else target
        if not isinstance(code, str) or not code:
            raise ValueError("topic broadcast needs a topic code")
        return {"topic": code.upper()}
    if kind == "list":
        numbers = target.get("numbers") if isinstance(target, Mapping) else target
        if isinstance(numbers, str):
            numbers = [n for n in re.split(r"[\s,;]+", numbers) if n]
        if not numbers:
            raise ValueError("list broadcast needs numbers")
        return {"numbers": [str(n).strip().lstrip("+") for n in numbers]}
    # segment
    if not isinstance(target, Mapping):
        raise ValueError("segment broadcast needs a filter mapping")
    unknown = set(target) - set(SEGMENT_FILTERS)
    if unknown:
        raise ValueError(f"unknown segment filters {sorted(unknown)}; use {SEGMENT_FILTERS}")
    spec: dict[str, Any] = {}
    for key, value in target.items():
        values = [value] if isinstance(value, str) else list(value)
        if not values:
            raise ValueError(f"segment filter {key!r} is empty")
        spec[key] = [str(v) for v in values]
    if not spec:
        raise ValueError("segment broadcast needs at least one filter")
    return spec


def get_broadcast(conn: Connection, broadcast_id: int) -> dict[str, Any] | None:
    """The broadcast row (target decoded) with its messages counted by status."""
    row = conn.execute(sa.select(broadcasts).where(broadcasts.c.id == broadcast_id)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["target"] = json.loads(row.target)
    om = outbound_messages
    out["messages"] = {
        str(status): int(n) for status, n in conn.execute(
            sa.select(om.c.status, sa.func.count()).where(om.c.broadcast_id == broadcast_id)
            .group_by(om.c.status))
    }
    return out


def list_broadcasts(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(broadcasts).order_by(broadcasts.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def _lock_broadcast(conn: Connection, broadcast_id: int, *, skip_locked: bool = False
                    ) -> Row | None:
    """The broadcast row, locked for this transaction (PostgreSQL). ``skip_locked``: None at
    once when another instance holds it, rather than waiting on it."""
    q = sa.select(broadcasts).where(broadcasts.c.id == broadcast_id)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=skip_locked)
    return conn.execute(q).first()


def cancel_broadcast(conn: Connection, broadcast_id: int, *, now: datetime
                     ) -> dict[str, Any] | None:
    """Cancel the broadcast and every message of it not yet claimed for sending.

    Returns {"status", "cancelled": n} or None for an unknown id. A finished broadcast's
    unsent (e.g. window-held) messages are cancelled too.
    """
    row = _lock_broadcast(conn, broadcast_id)
    if row is None:
        return None
    om = outbound_messages
    ids = sorted(conn.execute(
        sa.update(om).where(om.c.broadcast_id == broadcast_id, om.c.status == "queued")
        .values(status="cancelled", updated_at=now).returning(om.c.id)).scalars())
    record_events(conn, "out", ids, "cancelled", now=now,
                  detail=f"broadcast {broadcast_id} cancelled")
    conn.execute(sa.update(broadcasts).where(broadcasts.c.id == broadcast_id)
                 .values(status="cancelled", updated_at=now))
    return {"status": "cancelled", "cancelled": len(ids)}


def fail_broadcast(conn: Connection, broadcast_id: int, *, now: datetime, error: str
                   ) -> dict[str, Any] | None:
    """Cancel a broadcast that cannot run, keeping why (GET /broadcasts/{id} shows it)."""
    result = cancel_broadcast(conn, broadcast_id, now=now)
    conn.execute(sa.update(broadcasts).where(broadcasts.c.id == broadcast_id)
                 .values(error=error[:2000]))
    return result


def due_broadcasts(conn: Connection, *, now: datetime, stale_after: timedelta) -> list[int]:
    """Broadcasts to run: scheduled and due, or 'running' but untouched for ``stale_after``
    (the instance running it stopped mid-way; it resumes where it was)."""
    b = broadcasts.c
    q = sa.select(b.id).where(sa.or_(
        sa.and_(b.status == "scheduled", sa.or_(b.schedule_at.is_(None), b.schedule_at <= now)),
        sa.and_(b.status == "running", b.updated_at < now - stale_after),
    )).order_by(b.id)
    return list(conn.execute(q).scalars())


def next_broadcast_at(conn: Connection) -> datetime | None:
    b = broadcasts.c
    return conn.execute(sa.select(sa.func.min(b.schedule_at))
                        .where(b.status == "scheduled")).scalar()


@dataclass(slots=True)
class BroadcastPlan:
    """What is left to enqueue for a running broadcast."""

    id: int
    text: str
    priority: int
    pending: list[Recipient]
    opted_out: int
    total: int


def start_broadcast(conn: Connection, broadcast_id: int, *, now: datetime,
                    stale_after: timedelta = timedelta(0)) -> BroadcastPlan | None:
    """Mark the broadcast running and expand its recipients (minus those already queued,
    when resuming). None when it is not due, already taken by another runner, or cancelled.
    """
    # Skip, not wait: a locked row is being started or queued by another instance, and
    # waiting would hold this instance's writer (every MO behind it) on that transaction.
    row = _lock_broadcast(conn, broadcast_id, skip_locked=True)
    if row is None:
        return None
    due = (row.status == "scheduled" and (row.schedule_at is None or row.schedule_at <= now)) \
        or (row.status == "running" and row.updated_at <= now - stale_after)
    if not due:
        return None
    everyone = expand_recipients(conn, row.target_kind, json.loads(row.target))
    opted = opted_out_phones(conn, [r.phone for r in everyone])
    om = outbound_messages
    done = set(conn.execute(sa.select(om.c.dest_addr).where(om.c.broadcast_id == row.id))
               .scalars())
    pending = [r for r in everyone if r.phone not in opted and r.phone not in done]
    conn.execute(sa.update(broadcasts).where(broadcasts.c.id == row.id).values(
        status="running", total=len(everyone), skipped=len(opted), updated_at=now))
    return BroadcastPlan(row.id, row.text, row.priority, pending, len(opted), len(everyone))


def enqueue_broadcast_chunk(conn: Connection, broadcast_id: int, chunk: Sequence[Recipient],
                            *, now: datetime, policy: NoticePolicy = DEFAULT_POLICY
                            ) -> int | None:
    """Queue one chunk; None (nothing queued) when the broadcast was cancelled meanwhile."""
    row = _lock_broadcast(conn, broadcast_id)
    if row is None or row.status != "running":
        return None
    # A runner taken for dead (stale) may still be alive: whoever queues a recipient first
    # wins, the other skips it (the row lock above orders the two), so none gets it twice.
    om = outbound_messages
    phones = [r.phone for r in chunk]
    queued: set[str] = set()
    for i in range(0, len(phones), 900):  # stay under SQLite's bound-parameter limit
        queued.update(conn.execute(sa.select(om.c.dest_addr).where(
            om.c.broadcast_id == broadcast_id, om.c.dest_addr.in_(phones[i:i + 900])))
            .scalars())
    chunk = [r for r in chunk if r.phone not in queued]
    if row.service_number is not None:
        policy = replace(policy, source_addr=row.service_number)
    ids = enqueue_notices(conn, chunk, text=row.text, priority=row.priority, now=now,
                          broadcast_id=broadcast_id, policy=policy)
    conn.execute(sa.update(broadcasts).where(broadcasts.c.id == broadcast_id).values(
        queued=broadcasts.c.queued + len(ids), updated_at=now))
    return len(ids)


def finish_broadcast(conn: Connection, broadcast_id: int, *, now: datetime) -> bool:
    done = conn.execute(sa.update(broadcasts).where(broadcasts.c.id == broadcast_id,
                                                    broadcasts.c.status == "running")
                        .values(status="done", updated_at=now))
    if done.rowcount > 0:
        from store.webhooks import owe_event

        owe_event(conn, "broadcast.done", {"broadcast_id": broadcast_id},
                  ref=f"broadcast-{broadcast_id}-done", now=now)
    return done.rowcount > 0


def opted_out_phones(conn: Connection, phones: list[str]) -> set[str]:
    """Which of ``phones`` opted out of everything (STOP / TD): a broadcast skips them."""
    out: set[str] = set()
    for i in range(0, len(phones), 900):  # stay under SQLite's bound-parameter limit
        part = phones[i:i + 900]
        out.update(conn.execute(sa.select(opt_outs.c.phone)
                                .where(opt_outs.c.phone.in_(part))).scalars())
    return out


def expand_recipients(conn: Connection, kind: str, spec: Mapping[str, Any]) -> list[Recipient]:
    """Everyone a broadcast target names, once each (by phone), opted-out included (the
    caller counts and skips them), each with their window: the subscription's window for a
    topic, else the account's notify window."""
    a = accounts.c
    found: dict[str, Recipient] = {}
    if kind == "topic":
        topic_id = conn.execute(sa.select(topics.c.id)
                                .where(topics.c.code == spec["topic"])).scalar()
        if topic_id is None:
            raise ValueError(f"no topic {spec['topic']!r}")
        rows: Iterable[Row] = conn.execute(
            sa.select(subscriptions).where(subscriptions.c.topic_id == topic_id)
            .order_by(subscriptions.c.id))
        for s in rows:
            found.setdefault(s.phone, Recipient(s.phone, subscription_window(s)))
        return list(found.values())
    if kind == "list":
        numbers = [str(n) for n in spec["numbers"]]
        by_phone: dict[str, Row] = {}
        for i in range(0, len(numbers), 900):
            for acc in conn.execute(sa.select(accounts).where(a.phone.in_(numbers[i:i + 900]))):
                by_phone[acc.phone] = acc
        for n in numbers:
            found.setdefault(n, Recipient(n, account_window(by_phone.get(n))))
        return list(found.values())
    q = sa.select(accounts).where(a.active, a.phone.is_not(None))
    if kind == "group":
        gid = conn.execute(sa.select(groups.c.id).where(groups.c.name == spec["group"])).scalar()
        if gid is None:
            raise ValueError(f"no group {spec['group']!r}")
        q = q.where(a.id.in_(sa.select(group_members.c.account_id)
                             .where(group_members.c.group_id == gid)))
    elif kind == "segment":
        for key, values in spec.items():
            q = q.where(a[key].in_(values))
    else:
        raise ValueError(f"unknown broadcast target kind {kind!r}")
    for acc in conn.execute(q.order_by(a.id)):
        found.setdefault(acc.phone, Recipient(acc.phone, account_window(acc)))
    return list(found.values())


def local_midnight(day: date, tz: tzinfo | None = None) -> datetime:
    return datetime.combine(day, time(0), tz or _service_tz())
