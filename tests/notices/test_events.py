"""Triggered notices: every event type → its notice, to the right recipient, in the
recipient's language; exactly once; errors kept; order events from order_history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.notices.config import load_config, parse_config
from gateway.notices.events import (
    NoticeContext,
    NoticeError,
    emit,
    process_events,
    watch_order_history,
)
from store import notices as sn
from store.domain import accounts, orders
from store.domain.orders import Line
from store.models import subscriptions
from tests.notices.conftest import (
    NOW,
    PH_MGR,
    PH_MGR_ZH,
    PH_R1,
    PH_R2,
    PH_S1,
    local,
    max_mt,
    queued,
)

# (event, payload builder, expected recipient phone, fragments in that recipient's language)
CASES: list[tuple[str, dict[str, Any], str, str, list[str]]] = [
    ("order.received", {"account": "R1", "order": 7, "total_cents": 12345}, PH_R1, "en",
     ["Order 7 received", "123.45"]),
    ("order.received", {"account": "R2", "order": 8, "total_cents": 500}, PH_R2, "zh",
     ["订单8已收到", "5.00"]),
    ("order.approved", {"account": "R1", "order": 7, "total_cents": 12345}, PH_R1, "en",
     ["Order 7 approved"]),
    ("order.rejected", {"account": "R2", "order": 9, "total_cents": 1,
                        "reason": "超出限量"}, PH_R2, "zh", ["订单9未通过审核", "超出限量"]),
    ("order.rejected", {"account": "R1", "order": 9, "reason": "over quota"}, PH_R1, "en",
     ["Order 9 rejected: over quota"]),
    ("funds.insufficient", {"account": "R1", "order": 10, "total_cents": 999900}, PH_R1, "en",
     ["not enough funds", "9999.00", "1550.00"]),
    ("payment.received", {"account": "R2", "amount_cents": 30000}, PH_R2, "zh",
     ["已收到货款300.00", "余额-20.00"]),
    ("balance.low", {"account": "R1"}, PH_R1, "en", ["balance is low: 1500.00"]),
    ("balance.negative", {"account": "R1"}, PH_R1, "en", ["bill 88.00 due 2025-01-09"]),
    ("order_day.reminder", {"account": "R1"}, PH_R1, "en", ["order day (08:00-18:00)"]),
    ("order_day.reminder", {"account": "R2"}, PH_R2, "zh", ["今天是您的订货日（全天）"]),
    ("order_cycle.changed", {"account": "R1"}, PH_R1, "en", ["Mon, Thu, 08:00-18:00"]),
    ("order_cycle.changed", {"account": "R2"}, PH_R2, "zh", ["周一"]),
    ("retailer.missed_order_day", {"account": "R1", "date": "2025-01-06"}, PH_MGR, "en",
     ["Shop R1 (R1, 8613800000001) did not order", "2025-01-06"]),
    ("retailer.missed_order_day", {"account": "R2", "date": "2025-01-06"}, PH_MGR_ZH, "zh",
     ["零售户Shop R2", "未订货"]),
    ("route.new_retailer", {"account": "R1"}, PH_MGR, "en", ["New retailer on route RT1"]),
    ("route.new_retailer", {"account": "R2"}, PH_MGR_ZH, "zh", ["线路RT2新增零售户"]),
    ("process.stage", {"account": "R1", "stage": "accepted", "process": "Delivery",
                       "ref": "D-1"}, PH_R1, "en", ["Delivery D-1: accepted."]),
    ("process.stage", {"account": "R1", "stage": "dispatched", "process": "Delivery",
                       "ref": "D-1"}, PH_R1, "en", ["Delivery D-1: dispatched."]),
    ("process.stage", {"phone": PH_S1, "stage": "delivered", "process": "配送",
                       "ref": "D-2"}, PH_S1, "zh", ["配送D-2：已送达。"]),
    ("process.stage", {"phone": "8613500000001", "stage": "picking", "process": "Job",
                       "ref": "7", "lang": "en"}, "8613500000001", "en",
     ["Job 7: being picked."]),
]

EVENT_TYPES = {
    "order.received", "order.approved", "order.rejected", "funds.insufficient",
    "payment.received", "balance.low", "balance.negative", "order_day.reminder",
    "order_cycle.changed", "retailer.missed_order_day", "route.new_retailer", "process.stage",
}


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_every_event_type_is_configured_and_covered() -> None:
    config = load_config()
    assert set(config.events) >= EVENT_TYPES
    assert {c[0] for c in CASES} == EVENT_TYPES
    assert config.events["retailer.missed_order_day"].recipients == ("manager",)
    assert config.events["route.new_retailer"].recipients == ("manager",)


@pytest.mark.parametrize(("type_", "payload", "to", "lang", "fragments"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_event_becomes_its_notice(conn: Connection, world: dict[str, int],
                                  ctx: NoticeContext, type_: str, payload: dict[str, Any],
                                  to: str, lang: str, fragments: list[str]) -> None:
    payload = dict(payload)
    if "account" in payload:
        payload["account_id"] = world[payload.pop("account")]
    before = max_mt(conn)
    event_id = sn.raise_event(conn, type_, payload, NOW)
    assert process_events(conn, [event_id], now=NOW, ctx=ctx) == (1, 1)
    [mt] = queued(conn, since_id=before)
    assert mt.dest_addr == to
    assert _cjk(mt.text) == (lang == "zh"), mt.text
    for f in fragments:
        assert f in mt.text, (f, mt.text)
    assert mt.priority == ctx.config.events[type_].priority
    assert mt.source_addr == "10690"
    ev = sn.get_event(conn, event_id)
    assert ev is not None and ev["processed_at"] is not None and ev["error"] is None


def test_event_processed_twice_yields_one_notice(conn: Connection, world: dict[str, int],
                                                 ctx: NoticeContext) -> None:
    before = max_mt(conn)
    event_id = sn.raise_event(conn, "payment.received",
                              {"account_id": world["R1"], "amount_cents": 100}, NOW)
    assert sn.pending_event_ids(conn) == [event_id]
    assert process_events(conn, [event_id], now=NOW, ctx=ctx) == (1, 1)
    assert process_events(conn, [event_id], now=NOW, ctx=ctx) == (0, 0)
    assert sn.pending_event_ids(conn) == []
    assert len(queued(conn, since_id=before)) == 1


def test_account_by_number_and_window_hold(conn: Connection, world: dict[str, int],
                                           ctx: NoticeContext) -> None:
    accounts.update(conn, world["R1"], now=NOW, notify_window_start="09:00",
                    notify_window_end="20:00")
    before = max_mt(conn)
    night = local(2025, 1, 6, 22)
    ids = emit(conn, "balance.low", {"account_no": "R1"}, now=night, ctx=ctx)
    [mt] = queued(conn, since_id=before)
    assert mt.id == ids[0] and mt.schedule_at == local(2025, 1, 7, 9)


def test_topic_payload_uses_the_subscription_window(conn: Connection, world: dict[str, int],
                                                    ctx: NoticeContext) -> None:
    topic_id = conn.execute(sa.text("SELECT id FROM topics WHERE code = 'DIGEST_SALES'")
                            ).scalar_one()
    conn.execute(subscriptions.insert().values(phone=PH_MGR, topic_id=topic_id, window_start=7,
                                               window_end=9, created_at=NOW))
    before = max_mt(conn)
    emit(conn, "digest.daily_sales", {"phone": PH_MGR, "topic": "DIGEST_SALES",
                                      "date": "2025-01-06", "retailers": 2, "reported": 1,
                                      "units": 3, "revenue_cents": 100}, now=NOW, ctx=ctx)
    [mt] = queued(conn, since_id=before)
    assert mt.schedule_at == local(2025, 1, 7, 7)
    assert mt.priority == 3 and "Sales 2025-01-06: 1/2 retailers" in mt.text


@pytest.mark.parametrize(("type_", "payload", "error"), [
    ("no.such.event", {}, "no notice configured"),
    ("balance.low", {}, "no recipient"),
    ("process.stage", {"phone": PH_S1}, "needs payload field 'stage'"),
    ("process.stage", {"phone": PH_S1, "stage": "teleported", "process": "x", "ref": "1"},
     "process_stage_teleported"),
    ("balance.low", {"account_no": "NOPE"}, "no account"),
])
def test_bad_events_keep_their_error_and_do_not_block_others(
        conn: Connection, world: dict[str, int], ctx: NoticeContext, type_: str,
        payload: dict[str, Any], error: str) -> None:
    before = max_mt(conn)
    bad = sn.raise_event(conn, type_, payload, NOW)
    good = sn.raise_event(conn, "balance.low", {"account_id": world["R1"]}, NOW)
    assert process_events(conn, [bad, good], now=NOW, ctx=ctx) == (2, 1)
    ev = sn.get_event(conn, bad)
    assert ev is not None and ev["processed_at"] is not None and error in ev["error"]
    assert [m.dest_addr for m in queued(conn, since_id=before)] == [PH_R1]
    assert sn.pending_event_ids(conn) == []
    assert sn.retry_event(conn, bad) and sn.pending_event_ids(conn) == [bad]


def test_recipients_deduplicated_and_configurable(conn: Connection, world: dict[str, int]
                                                  ) -> None:
    config = parse_config({"events": {"x.both": {"template": "notice_balance_low",
                                                 "recipients": ["account", "manager",
                                                                "phone"], "priority": 0}}})
    ctx = NoticeContext(config)
    before = max_mt(conn)
    emit(conn, "x.both", {"account_id": world["R1"], "phone": PH_R1}, now=NOW, ctx=ctx)
    rows = queued(conn, since_id=before)
    assert sorted(m.dest_addr for m in rows) == sorted([PH_R1, PH_MGR])
    assert {m.priority for m in rows} == {0}


def test_order_events_from_order_history(conn: Connection, world: dict[str, int],
                                         ctx: NoticeContext) -> None:
    # First pass places the cursor: orders older than the feature raise nothing.
    old = orders.create(conn, world["R1"], [Line("1001", 1, 100)], status="pending_review",
                        now=NOW)
    assert watch_order_history(conn, now=NOW, ctx=ctx) == 0
    placed = orders.create(conn, world["R1"], [Line("1001", 2, 100)], status="pending_review",
                           now=NOW, detail="sms ORD")
    short = orders.create(conn, world["R2"], [Line("1001", 2, 100)], status="pending_funds",
                          now=NOW, detail="sms ORD")
    orders.set_status(conn, placed, "pending_review", now=NOW, detail="sms MOD")
    orders.set_status(conn, placed, "approved", now=NOW)
    orders.set_status(conn, old, "rejected", now=NOW, reject_reason="over quota")
    orders.cancel(conn, short, now=NOW)
    later = NOW + timedelta(seconds=10)
    raised = watch_order_history(conn, now=later, ctx=ctx)
    assert raised == 5
    assert watch_order_history(conn, now=later, ctx=ctx) == 0  # cursor moved on
    before = max_mt(conn)
    assert process_events(conn, sn.pending_event_ids(conn), now=later, ctx=ctx) == (5, 5)
    texts = [(m.dest_addr, m.text) for m in queued(conn, since_id=before)]
    assert texts == [
        (PH_R1, f"Order {placed} received: total 2.00. We will review it shortly."),
        (PH_R2, f"订单{short}已收到，金额2.00，等待审核。"),
        (PH_R2, f"订单{short}货款不足（金额2.00，可用-20.00），请及时存款。"),
        (PH_R1, f"Order {placed} approved: total 2.00. Thank you."),
        (PH_R1, f"Order {old} rejected: over quota."),
    ]


def test_emit_unknown_type_raises(conn: Connection, world: dict[str, int],
                                  ctx: NoticeContext) -> None:
    with pytest.raises(NoticeError):
        emit(conn, "nope", {}, now=NOW, ctx=ctx)
