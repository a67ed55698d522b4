"""Triggered notices: durable events (store.notices.raise_event) → notices, exactly once.

An event's notices and its processed mark are written in ONE transaction, and an event is
only taken while still unprocessed (locked on PostgreSQL), so processing it twice — two
passes, two instances, a crash and restart — never queues its notices twice. A failing
event (unknown type, no recipient, missing template field) is marked processed with its
error kept, visible, and retryable with `store.notices.retry_event`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from commands.handlers.common import money
from commands.templates import LANGS, fill, render, table
from gateway.notices.config import NoticeConfig
from store import leases
from store import notices as sn
from store.domain import accounts, settings
from store.models import accounts as accounts_t
from store.models import order_history, orders, subscriptions, topics
from store.notices import NoticePolicy, Window
from store.store import Store

log = logging.getLogger("smsgw.notices")

ORDER_HISTORY_CURSOR = "notices.order_history_cursor"


class NoticeError(Exception):
    """The event cannot become a notice (kept as the event's error)."""


@dataclass(frozen=True, slots=True)
class NoticeContext:
    config: NoticeConfig
    policy: NoticePolicy = sn.DEFAULT_POLICY


@dataclass(frozen=True, slots=True)
class _Target:
    phone: str
    lang: str
    window: Window | None


# ---------------------------------------------------------------------------------------------
# One event → its notices
# ---------------------------------------------------------------------------------------------


def emit(conn: Connection, type_: str, payload: Mapping[str, Any], *, now: datetime,
         ctx: NoticeContext) -> list[int]:
    """Queue the notices configured for an event; returns the outbound ids.

    Used by the event processor and directly by scheduled jobs (whose slot claim and notices
    then commit together).
    """
    rule = _rule(ctx, type_)
    return [sn.enqueue_notice(conn, to=t.phone, text=text, priority=rule.priority, now=now,
                              window=t.window, policy=ctx.policy)
            for t, text in plan_notices(conn, type_, payload, ctx=ctx)]


def plan_notices(conn: Connection, type_: str, payload: Mapping[str, Any], *,
                 ctx: NoticeContext) -> list[tuple[_Target, str]]:
    """Each recipient of the event's notices with its text, writing nothing; NoticeError
    saying why there would be none (unknown type or account, no recipient, missing field).

    `emit` queues what this returns; `POST /events` calls it to refuse at once (422) an
    event that could only fail later in the processor.
    """
    rule = _rule(ctx, type_)
    try:
        key = rule.template.format(**payload) if "{" in rule.template else rule.template
    except (KeyError, IndexError) as exc:
        raise NoticeError(f"template {rule.template!r} needs payload field {exc}") from exc
    subject = _subject(conn, payload)
    targets = _targets(conn, rule.recipients, payload, subject, ctx.config.default_lang)
    if not targets:
        raise NoticeError(f"{type_}: no recipient with a phone ({', '.join(rule.recipients)})")
    return [(t, _render(t.lang, key, _values(conn, payload, subject, t.lang)))
            for t in targets]


def _rule(ctx: NoticeContext, type_: str) -> Any:
    rule = ctx.config.events.get(type_)
    if rule is None:
        raise NoticeError(f"no notice configured for event type {type_!r}")
    return rule


def _render(lang: str, key: str, values: Mapping[str, Any]) -> str:
    # Not commands.templates.render: payload fields may be called "lang" or "key".
    templates = table(lang if lang in LANGS else "en")
    if key not in templates:
        raise NoticeError(f"no template {key!r} ({lang})")
    try:
        return fill(lang, templates[key], values)
    except (KeyError, IndexError) as exc:
        raise NoticeError(f"template {key!r} ({lang}) needs payload field {exc}") from exc


def _subject(conn: Connection, payload: Mapping[str, Any]) -> Row | None:
    if payload.get("account_id") is not None:
        found = accounts.by_id(conn, _row_id(payload["account_id"], "account_id"))
    elif payload.get("account_no"):
        found = accounts.by_account_no(conn, str(payload["account_no"]))
    else:
        return None
    if found is None:
        raise NoticeError(f"no account {payload.get('account_id') or payload.get('account_no')}")
    return found


def _row_id(value: Any, field: str) -> int:
    """A payload's row id as an int the database can take (BIGINT), else NoticeError."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise NoticeError(f"{field} {value!r} is not a number") from None
    if not 0 < n < 2**63:
        raise NoticeError(f"{field} {value!r} is out of range")
    return n


def _targets(conn: Connection, kinds: tuple[str, ...], payload: Mapping[str, Any],
             subject: Row | None, default_lang: str) -> list[_Target]:
    out: dict[str, _Target] = {}

    def add(acc: Row | None) -> None:
        if acc is not None and acc.phone and acc.active:
            out.setdefault(acc.phone, _Target(acc.phone, acc.lang, sn.account_window(acc)))

    for kind in kinds:
        if kind == "account":
            add(subject)
        elif kind == "manager":
            mgr_id = payload.get("manager_id") or (subject.manager_id if subject else None)
            if mgr_id is not None:
                add(accounts.by_id(conn, _row_id(mgr_id, "manager_id")))
        elif kind == "phone" and payload.get("phone"):
            phone = str(payload["phone"])
            acc = accounts.by_phone(conn, phone)
            window = sn.account_window(acc)
            if payload.get("topic"):
                sub = conn.execute(
                    sa.select(subscriptions).join(topics)
                    .where(subscriptions.c.phone == phone,
                           topics.c.code == str(payload["topic"]).upper())).first()
                window = sn.subscription_window(sub) if sub is not None else window
            lang = acc.lang if acc is not None else str(payload.get("lang") or default_lang)
            out.setdefault(phone, _Target(phone, lang, window))
    return list(out.values())


def _values(conn: Connection, payload: Mapping[str, Any], subject: Row | None,
            lang: str) -> dict[str, Any]:
    v: dict[str, Any] = {}
    if subject is not None:
        days = [d for d in subject.order_days.replace(" ", "").split(",") if d]
        sep = render(lang, "list_sep")
        start, end = subject.order_window_start, subject.order_window_end
        v.update(
            account=subject.account_no, name=subject.name, route=subject.route or "-",
            retailer=subject.account_no, retailer_name=subject.name,
            retailer_phone=subject.phone or "-",
            balance=money(subject.balance_cents), credit=money(subject.credit_cents),
            available=money(subject.balance_cents + subject.credit_cents),
            bill=money(subject.last_bill_cents) if subject.last_bill_cents is not None else "-",
            due=subject.last_bill_due.isoformat() if subject.last_bill_due else "-",
            days=sep.join(render(lang, f"weekday_{d}") for d in sorted(days))
            if days else render(lang, "notice_every_day"),
            window=f"{start or '00:00'}-{end or '24:00'}" if (start or end)
            else render(lang, "notice_all_day"),
        )
    for key, value in payload.items():
        v[key] = value
        if key.endswith("_cents") and isinstance(value, int | float):
            v[key[: -len("_cents")]] = money(int(value))
    v.setdefault("reason", "-")
    return v


# ---------------------------------------------------------------------------------------------
# The event log
# ---------------------------------------------------------------------------------------------


def process_events(conn: Connection, event_ids: list[int], *, now: datetime,
                   ctx: NoticeContext) -> tuple[int, int]:
    """Turn pending events into notices; returns (events handled, notices queued).

    Each event runs in a savepoint: a failing one keeps its error without undoing the others.
    """
    handled = queued = 0
    for event_id in event_ids:
        row = sn.lock_pending_event(conn, event_id)
        if row is None:
            continue  # already processed (or another instance holds it)
        handled += 1
        try:
            with conn.begin_nested():
                ids = emit(conn, row.type, json.loads(row.payload), now=now, ctx=ctx)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("event=%d %s failed: %s", row.id, row.type, error)
            sn.mark_event(conn, row.id, now=now, error=error[:2000])
            continue
        sn.mark_event(conn, row.id, now=now, notice_ids=ids)
        queued += len(ids)
        log.info("event=%d %s → %d notice(s) mt=%s", row.id, row.type, len(ids),
                 ",".join(map(str, ids)))
    return handled, queued


def watch_order_history(conn: Connection, *, now: datetime, ctx: NoticeContext,
                        lag: timedelta | None = None, batch: int = 500) -> int:
    """Raise order events for order_history rows newer than the cursor kept in settings.

    This is how order.received / approved / rejected / funds.insufficient are raised without
    touching the handlers (or the review code to come): every status change of an order
    writes an order_history row. The first call only places the cursor (no notices for
    orders older than the feature). ``lag`` (default 5 s on PostgreSQL) leaves rows of
    transactions that may still be committing with lower ids for the next pass.
    """
    # One instance at a time moves the cursor; the others skip this pass rather than hold
    # their writer (and every MO behind it) waiting for the lock.
    if not leases.try_xact_lock(conn, "notices.order_history"):
        return 0
    cursor = settings.get(conn, ORDER_HISTORY_CURSOR)
    oh = order_history.c
    if cursor is None:
        top = conn.execute(sa.select(sa.func.max(oh.id))).scalar()
        settings.put(conn, ORDER_HISTORY_CURSOR, str(top or 0))
        return 0
    if lag is None:
        lag = timedelta(seconds=5) if conn.dialect.name == "postgresql" else timedelta(0)
    rows = conn.execute(
        sa.select(order_history, orders.c.account_id, orders.c.total_cents,
                  orders.c.reject_reason, accounts_t.c.balance_cents, accounts_t.c.credit_cents)
        .join(orders, orders.c.id == oh.order_id)
        .join(accounts_t, accounts_t.c.id == orders.c.account_id)
        .where(oh.id > int(cursor), oh.at <= now - lag)
        .order_by(oh.id).limit(batch)).all()
    raised = 0
    for r in rows:
        names = ctx.config.order_history.get(r.status, ())
        if not names:
            continue
        prev = conn.execute(sa.select(oh.status).where(oh.order_id == r.order_id, oh.id < r.id)
                            .order_by(oh.id.desc()).limit(1)).scalar()
        if prev == r.status:
            continue  # e.g. MOD keeping the order pending_review: nothing new to tell
        payload = {"order": r.order_id, "account_id": r.account_id,
                   "total_cents": r.total_cents, "reason": r.reject_reason or "-",
                   "available_cents": r.balance_cents + r.credit_cents,
                   "order_history_id": r.id}
        for name in names:
            if name == "order.received" and prev is not None:
                continue  # received once, when the order is created
            sn.raise_event(conn, name, payload, now)
            raised += 1
    if rows:
        settings.put(conn, ORDER_HISTORY_CURSOR, str(rows[-1].id))
    return raised


# ---------------------------------------------------------------------------------------------
# The in-process processor
# ---------------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EventProcessor:
    """Polls the event log (and wakes at once when told something was raised)."""

    BATCH = 100

    def __init__(self, store: Store, ctx: NoticeContext, *, poll_interval: float = 1.0,
                 order_events: bool = False, on_enqueued: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = _utcnow):
        self.store = store
        self.ctx = ctx
        self.poll_interval = poll_interval
        self.order_events = order_events
        self.on_enqueued = on_enqueued
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="notice-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_once(self) -> int:
        """One pass: order_history → events, then pending events → notices. Returns the
        number of notices queued."""
        if self.order_events:
            await self.store.write(lambda c: watch_order_history(c, now=self.clock(),
                                                                 ctx=self.ctx))
        total = 0
        while True:
            ids = await self.store.read(lambda c: sn.pending_event_ids(c, self.BATCH))
            if not ids:
                break
            handled, queued = await self.store.write(
                lambda c, ids=ids: process_events(c, ids, now=self.clock(), ctx=self.ctx))
            total += queued
            if len(ids) < self.BATCH or handled == 0:
                break
        if total:
            self.on_enqueued()
        return total

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("notice event processing failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
