"""The receipt sweep (gateway/receipt_sweep.py) on SQLite and PostgreSQL: parked receipts
are matched again, and those that age unmatched are counted and logged once."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa

from gateway.metrics import METRICS
from gateway.receipt_sweep import ReceiptSweep
from store import Store, outbound, receipts
from store.models import outbound_parts
from tests.store.helpers import at, claim, mt


def _parked_with_part(store: Store, sid: str) -> int:
    """A submitted message whose receipt was parked and never matched (what the
    PostgreSQL race of tests/store/test_receipts.py leaves behind)."""
    mid = store.run(lambda c: mt(c))
    assert store.run(lambda c: claim(c)) == [mid]
    assert store.run(lambda c: receipts.apply_receipt(
        c, connection="smsc1", smsc_message_id=sid, state="delivered", error_code=None,
        raw=f"id:{sid} stat:DELIVRD", now=at(1))) is None
    store.run(lambda c: outbound.mark_part_submitted(
        c, message_id=mid, part_no=1, parts=1, smsc_message_id="placeholder", now=at(2)))
    store.run(lambda c: c.execute(sa.update(outbound_parts).where(
        outbound_parts.c.message_id == mid).values(smsc_message_id=sid)))
    return mid


def _status(store: Store, mid: int) -> str:
    return str(store.run(lambda c: outbound.get_message(c, mid))["status"])  # type: ignore[index]


async def test_sweep_matches_parked_receipts_and_reports_aged(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    mid = _parked_with_part(store, "4d2")
    assert store.run(lambda c: receipts.apply_receipt(
        c, connection="smsc1", smsc_message_id="never-sent", state="delivered",
        error_code=None, raw="id:never-sent stat:DELIVRD", now=at(1))) is None
    woken: list[bool] = []
    late_before = METRICS.receipts_matched_late._value.get()
    sweep = ReceiptSweep(store, unmatched_age=60, on_matched=lambda: woken.append(True),
                         clock=lambda: at(30))
    with caplog.at_level(logging.INFO, logger="smsgw.receipts"):
        assert await sweep.tick() == 1
    assert _status(store, mid) == "delivered"
    assert woken == [True]
    assert METRICS.receipts_matched_late._value.get() == late_before + 1
    assert METRICS.receipts_unmatched_aged._value.get() == 0  # 29 s old: not aged yet
    assert f"mt={mid} parked receipt matched on retry" in caplog.text

    # Later, on a full pass: the unknown id has aged; one WARNING, however many passes.
    sweep.clock = lambda: at(30) + timedelta(minutes=5)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="smsgw.receipts"):
        for _ in range(2 * sweep.full_every):
            assert await sweep.tick() == 0
    assert METRICS.receipts_unmatched_aged._value.get() == 1
    warnings = [r for r in caplog.records if "smsc_id=never-sent" in r.getMessage()]
    assert len(warnings) == 1 and "unmatched since" in warnings[0].getMessage()


async def test_sweep_task_runs_on_its_own(store: Store) -> None:
    mid = _parked_with_part(store, "77")
    sweep = ReceiptSweep(store, interval=0.05, clock=lambda: at(10))
    sweep.start()
    try:
        for _ in range(100):
            if _status(store, mid) == "delivered":
                break
            await asyncio.sleep(0.05)
    finally:
        await sweep.stop()
    assert _status(store, mid) == "delivered"
