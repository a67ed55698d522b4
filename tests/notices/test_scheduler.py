"""The scheduler: slots, restart neither skips nor repeats, and each job's notices."""

from __future__ import annotations

from datetime import date, datetime, time

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.notices.config import load_config
from gateway.notices.events import NoticeContext
from gateway.notices.scheduler import (
    Daily,
    Job,
    Scheduler,
    Weekly,
    bill_run,
    daily_sales_digest,
    jobs_from_config,
    missed_orders,
    order_day_reminders,
    weekly_collection_summary,
)
from store import Store
from store import notices as sn
from store.domain import orders
from store.domain.orders import Line
from store.models import subscriptions
from tests.notices.conftest import (
    NOW,
    PH_MGR,
    PH_MGR_ZH,
    PH_R1,
    PH_R2,
    SHANGHAI,
    build_world,
    local,
    max_mt,
    queued,
)


def test_slot_functions() -> None:
    daily = Daily(time(9))
    at = datetime(2026, 11, 24, 10, tzinfo=SHANGHAI)
    assert daily.slot_id(daily.slot_start(at)) == "2026-11-24"
    early = datetime(2026, 11, 24, 8, 59, tzinfo=SHANGHAI)
    assert daily.slot_id(daily.slot_start(early)) == "2026-11-23"
    assert daily.next_start(early) == datetime(2026, 11, 24, 9, tzinfo=SHANGHAI)
    weekly = Weekly(1, time(8))
    assert weekly.slot_id(weekly.slot_start(at)) == "2026-W48"  # Tuesday of week 48
    monday_early = datetime(2026, 11, 23, 7, tzinfo=SHANGHAI)
    assert weekly.slot_id(weekly.slot_start(monday_early)) == "2026-W47"
    assert weekly.slot_id(weekly.slot_start(datetime(2026, 1, 5, 8, tzinfo=SHANGHAI))) == \
        "2026-W02"


def test_default_jobs_load() -> None:
    names = [j.name for j in jobs_from_config(load_config().jobs)]
    assert names == ["order_day_reminder", "missed_orders", "daily_sales_digest",
                     "weekly_collection_summary", "bill_run"]


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_restart_neither_skips_nor_repeats(store: Store) -> None:
    runs: list[tuple[str, date]] = []

    def job_fn(conn: Connection, day: date, now: datetime, ctx: NoticeContext, **_: object
               ) -> int:
        runs.append((day.isoformat(), now.date()))
        return 0

    jobs = [Job("digest", Daily(time(9)), job_fn, {})]
    ctx = NoticeContext(load_config())
    clock = Clock(local(2026, 11, 23, 12))

    def scheduler() -> Scheduler:  # a new instance = a restart, same store
        return Scheduler(store, jobs, ctx, clock=clock)

    # First sight: the current slot becomes the baseline without running.
    assert await scheduler().run_due() == []
    assert await store.read(lambda c: sn.last_slot(c, "digest")) == "2026-11-23"
    # Slot A (2026-11-24 09:00) passes: exactly one run.
    clock.now = local(2026, 11, 24, 9, 0)
    s = scheduler()
    assert await s.run_due() == [("digest", "2026-11-24", 0)]
    assert await s.run_due() == []
    # Restart later within slot A: nothing.
    clock.now = local(2026, 11, 24, 23, 59)
    assert await scheduler().run_due() == []
    # Stopped through slots B (25th) and C (26th); restart on the 26th after 09:00: one run,
    # for the latest slot only.
    clock.now = local(2026, 11, 26, 15)
    assert await scheduler().run_due() == [("digest", "2026-11-26", 0)]
    assert await scheduler().run_due() == []
    assert runs == [("2026-11-24", date(2026, 11, 24)), ("2026-11-26", date(2026, 11, 26))]
    # A clock stepping back never re-runs an older slot.
    clock.now = local(2026, 11, 25, 10)
    assert await scheduler().run_due() == []


async def test_failed_job_is_not_claimed(store: Store) -> None:
    broken = [True]

    def flaky(conn: Connection, day: date, now: datetime, ctx: NoticeContext, **_: object
              ) -> int:
        if broken[0]:
            raise RuntimeError("boom")
        return 0

    await store.write(lambda c: sn.claim_slot(c, "flaky", "2026-11-23", now=NOW))
    s = Scheduler(store, [Job("flaky", Daily(time(9)), flaky, {})],
                  NoticeContext(load_config()), clock=Clock(local(2026, 11, 24, 10)))
    assert await s.run_due() == []
    assert await store.read(lambda c: sn.last_slot(c, "flaky")) == "2026-11-23"
    broken[0] = False
    assert await s.run_due() == [("flaky", "2026-11-24", 0)]


async def test_scheduler_queues_job_notices_with_the_claim(store: Store) -> None:
    await store.write(build_world)
    ctx = NoticeContext(load_config())
    jobs = jobs_from_config(load_config().jobs)
    # Pretend every job last ran on Sunday 2025-01-05 (W01 for the weekly one).
    for j in jobs:
        slot = "2025-W01" if isinstance(j.schedule, Weekly) else "2025-01-05"
        await store.write(lambda c, j=j, slot=slot: sn.claim_slot(c, j.name, slot, now=NOW))
    s = Scheduler(store, jobs, ctx, clock=Clock(local(2025, 1, 6, 8, 30)))  # Monday
    ran = await s.run_due()
    assert ("order_day_reminder", "2025-01-06", 2) in ran
    assert [r[0] for r in ran] == ["order_day_reminder", "weekly_collection_summary"]
    rows = await store.read(lambda c: queued(c))
    assert sorted(m.dest_addr for m in rows) == sorted([PH_R1, PH_R2])
    assert await s.run_due() == []


def _run(conn: Connection, fn, day: date, ctx: NoticeContext, **kw: object):  # type: ignore[no-untyped-def]
    before = max_mt(conn)
    n = fn(conn, day, NOW, ctx, **kw)
    rows = queued(conn, since_id=before)
    assert n == len(rows)
    return rows


def test_order_day_reminders_only_on_order_days(conn: Connection, world: dict[str, int],
                                                ctx: NoticeContext) -> None:
    monday, tuesday, thursday = date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 9)
    assert sorted(m.dest_addr for m in _run(conn, order_day_reminders, monday, ctx)) == \
        sorted([PH_R1, PH_R2])
    assert _run(conn, order_day_reminders, tuesday, ctx) == []
    [mt] = _run(conn, order_day_reminders, thursday, ctx)
    assert mt.dest_addr == PH_R1 and "order day" in mt.text


def test_missed_orders_go_to_the_manager(conn: Connection, world: dict[str, int],
                                         ctx: NoticeContext) -> None:
    monday = date(2025, 1, 6)
    # R1 ordered on Monday; R2's order was cancelled (does not count); R2's Sunday order
    # does not count for Monday either.
    orders.create(conn, world["R1"], [Line("1001", 1, 100)], status="pending_review",
                  now=local(2025, 1, 6, 9))
    o = orders.create(conn, world["R2"], [Line("1001", 1, 100)], status="pending_review",
                      now=local(2025, 1, 6, 9))
    orders.cancel(conn, o, now=local(2025, 1, 6, 10))
    orders.create(conn, world["R2"], [Line("1001", 1, 100)], status="pending_review",
                  now=local(2025, 1, 5, 23, 59))
    [mt] = _run(conn, missed_orders, monday, ctx)
    assert mt.dest_addr == PH_MGR_ZH and "Shop R2" in mt.text and "2025-01-06" in mt.text


def test_digests_for_subscribed_managers(conn: Connection, world: dict[str, int],
                                         ctx: NoticeContext) -> None:
    ids = {code: conn.execute(sa.text(f"SELECT id FROM topics WHERE code = '{code}'"))
           .scalar_one() for code in ("DIGEST_SALES", "DIGEST_COLLECTION")}
    conn.execute(subscriptions.insert(), [
        {"phone": PH_MGR, "topic_id": ids["DIGEST_SALES"], "created_at": NOW},
        {"phone": PH_MGR, "topic_id": ids["DIGEST_COLLECTION"], "created_at": NOW},
        {"phone": PH_R1, "topic_id": ids["DIGEST_SALES"], "created_at": NOW},  # not a manager
    ])
    _upsert(conn, world["R1"], date(2025, 1, 6))
    [daily] = _run(conn, daily_sales_digest, date(2025, 1, 6), ctx)
    assert daily.dest_addr == PH_MGR and daily.priority == 3
    assert daily.text == "Sales 2025-01-06: 1/2 retailers reported, 3 units, revenue 30.00."
    [weekly] = _run(conn, weekly_collection_summary, date(2025, 1, 13), ctx)
    assert weekly.text.startswith("Week 2025-W02 (2025-01-06 to 2025-01-12): 1/2 retailers "
                                  "reported on 1 day, 3 units")


def _upsert(conn: Connection, account_id: int, day: date) -> None:
    from store.models import sales_lines, sales_reports

    rid = conn.execute(sales_reports.insert().values(
        account_id=account_id, report_date=day, created_at=NOW, updated_at=NOW
    ).returning(sales_reports.c.id)).scalar_one()
    conn.execute(sales_lines.insert().values(report_id=rid, product_code="1001", qty=3,
                                             price_cents=1000, cost_cents=800))


def test_bill_run(conn: Connection, world: dict[str, int], ctx: NoticeContext) -> None:
    # R1's bill is due 2025-01-09: notices 3 days before and on the day.
    [mt] = _run(conn, bill_run, date(2025, 1, 6), ctx, days_before=[3, 0])
    assert mt.dest_addr == PH_R1 and "88.00" in mt.text and "2025-01-09" in mt.text
    assert _run(conn, bill_run, date(2025, 1, 7), ctx, days_before=[3, 0]) == []
    assert len(_run(conn, bill_run, date(2025, 1, 9), ctx, days_before=[3, 0])) == 1
