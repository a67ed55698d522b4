"""Scheduled notices: an asyncio scheduler inside the gateway process.

Each job has a slot function: the slot a moment belongs to is the latest scheduled time at or
before it — daily at 09:00 → "2026-11-24", weekly Monday 08:00 → "2026-W48". The last slot
a job ran for is kept in ``job_runs`` and claimed in the SAME transaction as the job's
notices, so:

- a restart within a slot does not run it again (the slot is already claimed);
- a slot missed while stopped runs once on start — only the latest one, never a flood
  (the scheduler only ever looks at the current slot);
- a job seen for the first time starts from the current slot without running it (installing
  the gateway at 15:00 does not send that morning's 08:00 reminders at 15:00).

Several instances on one database: a slot is claimed by a conditional upsert, so it runs
once whichever instance gets there; an instance also takes a per-job advisory lock without
waiting first (store.leases.try_xact_lock), so while one instance runs a job the others skip
it at once instead of holding their writer on the job's row until it commits.

The clock is injectable (``clock=``) and `run_due` runs one pass, so tests drive time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.notices.events import NoticeContext, emit
from store import leases
from store import notices as sn
from store.domain import queries
from store.models import accounts, orders, sales_reports, subscriptions, topics
from store.store import Store

log = logging.getLogger("smsgw.scheduler")


def _service_tz() -> tzinfo:
    from commands import clock

    return clock.SERVICE_TZ


# ---------------------------------------------------------------------------------------------
# Slots
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Daily:
    at: time

    def slot_start(self, local_now: datetime) -> datetime:
        start = datetime.combine(local_now.date(), self.at, local_now.tzinfo)
        return start if start <= local_now else start - timedelta(days=1)

    def slot_id(self, start: datetime) -> str:
        return start.date().isoformat()

    def next_start(self, local_now: datetime) -> datetime:
        return self.slot_start(local_now) + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Weekly:
    weekday: int  # ISO, 1 = Monday
    at: time

    def slot_start(self, local_now: datetime) -> datetime:
        back = (local_now.isoweekday() - self.weekday) % 7
        start = datetime.combine(local_now.date() - timedelta(days=back), self.at,
                                 local_now.tzinfo)
        return start if start <= local_now else start - timedelta(days=7)

    def slot_id(self, start: datetime) -> str:
        year, week, _ = start.date().isocalendar()
        return f"{year}-W{week:02d}"

    def next_start(self, local_now: datetime) -> datetime:
        return self.slot_start(local_now) + timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Every:
    """Every ``seconds`` (aligned to the epoch, so every instance agrees on the slots): for
    frequent jobs and for tests of the scheduler with real time."""

    seconds: int

    def slot_start(self, local_now: datetime) -> datetime:
        t = int(local_now.timestamp()) // self.seconds * self.seconds
        return datetime.fromtimestamp(t, local_now.tzinfo)

    def slot_id(self, start: datetime) -> str:
        return f"E{int(start.timestamp()) // self.seconds:012d}"  # fixed width: string order

    def next_start(self, local_now: datetime) -> datetime:
        return self.slot_start(local_now) + timedelta(seconds=self.seconds)


Schedule = Daily | Weekly | Every
JobFn = Callable[[Connection, date, datetime, NoticeContext], int]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    schedule: Schedule
    run: JobFn  # (conn, slot day, now, ctx) -> notices queued
    options: dict[str, Any]


def _parse_time(value: Any) -> time:
    h, _, m = str(value).partition(":")
    return time(int(h), int(m or 0))


# ---------------------------------------------------------------------------------------------
# The jobs. Each gets the slot's local day and returns how many notices it queued.
# ---------------------------------------------------------------------------------------------


def _order_day_retailers(conn: Connection, day: date) -> list[Any]:
    """Active SMS-ordering retailers with explicit order days that include ``day``."""
    rows = conn.execute(sa.select(accounts).where(
        accounts.c.role == "retailer", accounts.c.active, accounts.c.sms_ordering,
        accounts.c.order_days != "").order_by(accounts.c.id)).all()
    wd = str(day.isoweekday())
    return [r for r in rows if wd in r.order_days.replace(" ", "").split(",")]


def order_day_reminders(conn: Connection, day: date, now: datetime, ctx: NoticeContext,
                        **_: Any) -> int:
    n = 0
    for r in _order_day_retailers(conn, day):
        if r.phone:
            n += len(emit(conn, "order_day.reminder", {"account_id": r.id,
                                                       "date": day.isoformat()},
                          now=now, ctx=ctx))
    return n


def missed_orders(conn: Connection, day: date, now: datetime, ctx: NoticeContext,
                  **_: Any) -> int:
    """retailer.missed_order_day (to the manager) for retailers whose order day ``day`` was
    and who placed no (non-cancelled) order that local day."""
    retailers = [r for r in _order_day_retailers(conn, day) if r.manager_id is not None]
    since = sn.local_midnight(day, ctx.policy.tz)
    ordered = _ordered_between(conn, [r.id for r in retailers], since,
                               since + timedelta(days=1))
    n = 0
    for r in retailers:
        if r.id not in ordered:
            n += len(emit(conn, "retailer.missed_order_day",
                          {"account_id": r.id, "date": day.isoformat()}, now=now, ctx=ctx))
    return n


def _ordered_between(conn: Connection, account_ids: list[int], since: datetime,
                     until: datetime) -> set[int]:
    if not account_ids:
        return set()
    q = sa.select(orders.c.account_id).distinct().where(
        orders.c.account_id.in_(account_ids), orders.c.created_at >= since,
        orders.c.created_at < until, orders.c.status != "cancelled")
    return {int(x) for x in conn.execute(q).scalars()}


def _digest_subscribers(conn: Connection, topic_code: str) -> list[tuple[str, Any]]:
    """(phone, manager account) for each manager subscribed to the digest topic."""
    rows = conn.execute(
        sa.select(subscriptions.c.phone, accounts.c.id)
        .join(topics, topics.c.id == subscriptions.c.topic_id)
        .join(accounts, accounts.c.phone == subscriptions.c.phone)
        .where(topics.c.code == topic_code.upper(), topics.c.active,
               accounts.c.role == "manager", accounts.c.active)
        .order_by(subscriptions.c.id)).all()
    return [(phone, conn.execute(sa.select(accounts).where(accounts.c.id == aid)).one())
            for phone, aid in rows]


def daily_sales_digest(conn: Connection, day: date, now: datetime, ctx: NoticeContext, *,
                       topic: str = "DIGEST_SALES", **_: Any) -> int:
    n = 0
    for phone, manager in _digest_subscribers(conn, topic):
        ids = [r.id for r in queries.route_retailers(conn, manager)]
        totals = queries.sales_totals(conn, ids, day, day)
        n += len(emit(conn, "digest.daily_sales", {
            "phone": phone, "topic": topic, "date": day.isoformat(), "retailers": len(ids),
            "reported": totals.accounts, "units": totals.units,
            "revenue_cents": totals.revenue_cents}, now=now, ctx=ctx))
    return n


def weekly_collection_summary(conn: Connection, day: date, now: datetime, ctx: NoticeContext,
                              *, topic: str = "DIGEST_COLLECTION", **_: Any) -> int:
    """The previous ISO week (Monday to Sunday) before the slot's day."""
    start = day - timedelta(days=day.isoweekday() - 1 + 7)
    end = start + timedelta(days=6)
    year, week, _ = start.isocalendar()
    n = 0
    for phone, manager in _digest_subscribers(conn, topic):
        ids = [r.id for r in queries.route_retailers(conn, manager)]
        totals = queries.sales_totals(conn, ids, start, end)
        reports = conn.execute(sa.select(sa.func.count()).select_from(sales_reports).where(
            sales_reports.c.account_id.in_(ids or [-1]), sales_reports.c.report_date >= start,
            sales_reports.c.report_date <= end)).scalar_one()
        n += len(emit(conn, "digest.weekly_collection", {
            "phone": phone, "topic": topic, "week": f"{year}-W{week:02d}",
            "start": start.isoformat(), "end": end.isoformat(), "retailers": len(ids),
            "reported": totals.accounts, "reports": int(reports), "units": totals.units,
            "revenue_cents": totals.revenue_cents}, now=now, ctx=ctx))
    return n


def bill_run(conn: Connection, day: date, now: datetime, ctx: NoticeContext, *,
             days_before: Any = (3, 0), **_: Any) -> int:
    offsets = [days_before] if isinstance(days_before, int) else list(days_before)
    dues = [day + timedelta(days=int(d)) for d in offsets]
    rows = conn.execute(sa.select(accounts.c.id, accounts.c.last_bill_due).where(
        accounts.c.active, accounts.c.phone.is_not(None), accounts.c.last_bill_cents.is_not(None),
        accounts.c.last_bill_due.in_(dues)).order_by(accounts.c.id)).all()
    n = 0
    for account_id, due in rows:
        n += len(emit(conn, "bill.due", {"account_id": account_id,
                                         "days": (due - day).days}, now=now, ctx=ctx))
    return n


JOB_FUNCTIONS: dict[str, JobFn] = {
    "order_day_reminder": order_day_reminders,
    "missed_orders": missed_orders,
    "daily_sales_digest": daily_sales_digest,
    "weekly_collection_summary": weekly_collection_summary,
    "bill_run": bill_run,
}

def jobs_from_config(config: dict[str, dict[str, Any]]) -> list[Job]:
    jobs = []
    for name, spec in config.items():
        spec = dict(spec)
        if spec.pop("enabled", True) is False:
            continue
        fn = JOB_FUNCTIONS.get(name)
        if fn is None:
            raise ValueError(f"unknown scheduled job {name!r}; known: {sorted(JOB_FUNCTIONS)}")
        every = spec.pop("every", None)  # seconds
        at = _parse_time(spec.pop("at", "08:00"))
        weekday = spec.pop("weekday", None)
        schedule: Schedule = (Every(int(every)) if every is not None
                              else Weekly(int(weekday), at) if weekday is not None
                              else Daily(at))
        jobs.append(Job(name, schedule, fn, spec))
    return jobs


# ---------------------------------------------------------------------------------------------
# The scheduler
# ---------------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def run_job_slot(conn: Connection, job: Job, slot: str, day: date, *, now: datetime,
                 ctx: NoticeContext, first_sight_baseline: bool = True) -> int | None:
    """Claim ``slot`` and do the job's work in this transaction; None when not claimed."""
    if not leases.try_xact_lock(conn, f"job:{job.name}"):
        return None  # another instance is running this job right now
    if first_sight_baseline and sn.last_slot(conn, job.name) is None:
        sn.claim_slot(conn, job.name, slot, now=now)
        log.info("job %s: first seen, starts after slot %s", job.name, slot)
        return None
    if not sn.claim_slot(conn, job.name, slot, now=now):
        return None
    return job.run(conn, day, now, ctx, **job.options)


class Scheduler:
    def __init__(self, store: Store, jobs: list[Job], ctx: NoticeContext, *,
                 clock: Callable[[], datetime] = _utcnow, tick: float = 30.0,
                 on_enqueued: Callable[[], None] = lambda: None):
        self.store = store
        self.jobs = jobs
        self.ctx = ctx
        self.clock = clock
        self.tick = tick
        self.on_enqueued = on_enqueued
        self._task: asyncio.Task[None] | None = None

    def _tz(self) -> tzinfo:
        return self.ctx.policy.tz or _service_tz()

    def current_slot(self, job: Job, now: datetime | None = None) -> tuple[str, date]:
        local_now = (now or self.clock()).astimezone(self._tz())
        start = job.schedule.slot_start(local_now)
        return job.schedule.slot_id(start), start.date()

    async def run_due(self) -> list[tuple[str, str, int]]:
        """Run every job whose current slot has not run yet: [(job, slot, notices)]."""
        ran = []
        for job in self.jobs:
            now = self.clock()
            slot, day = self.current_slot(job, now)
            try:
                n = await self.store.write(
                    lambda c, job=job, slot=slot, day=day, now=now: run_job_slot(
                        c, job, slot, day, now=now, ctx=self.ctx))
            except Exception:
                log.exception("job %s slot %s failed; it is retried on the next tick",
                              job.name, slot)
                continue
            if n is not None:
                log.info("job %s slot %s: %d notice(s)", job.name, slot, n)
                ran.append((job.name, slot, n))
                if n:
                    self.on_enqueued()
        return ran

    def seconds_to_next(self) -> float:
        now = self.clock()
        local_now = now.astimezone(self._tz())
        nxt = min((j.schedule.next_start(local_now) for j in self.jobs), default=None)
        if nxt is None:
            return self.tick
        return max(0.05, min(self.tick, (nxt - local_now).total_seconds() + 0.05))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.run_due()
            await asyncio.sleep(self.seconds_to_next())
