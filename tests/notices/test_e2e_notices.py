"""End to end: an event raised in the store, a broadcast and an SMS order reach the handset
through a real Gateway and the simulator (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from commands.demo import load_demo_data
from gateway.app import Gateway
from store import notices as sn
from store.domain import accounts, topics
from tests.test_e2e import make_settings

PHONE = "8613800000001"  # demo retailer R1001, PIN 123456


@pytest.fixture
async def gw(db_url: str) -> AsyncIterator[Gateway]:
    gateway = Gateway(make_settings(db_url, notices_poll_interval=0.1, order_events=True))
    await gateway.start(api=False)
    try:
        await gateway.store.write(lambda c: load_demo_data(c, now=datetime.now(UTC)))
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        yield gateway
    finally:
        await gateway.stop()


async def _account(gw: Gateway, phone: str):  # type: ignore[no-untyped-def]
    return await gw.store.read(lambda c: accounts.by_phone(c, phone))


async def test_event_in_the_store_reaches_the_handset(gw: Gateway) -> None:
    acc = await _account(gw, PHONE)
    await gw.store.write(lambda c: accounts.update(c, acc.id, now=datetime.now(UTC),
                                                   lang="en"))
    await gw.store.write(lambda c: sn.raise_event(
        c, "payment.received", {"account_id": acc.id, "amount_cents": 12300},
        datetime.now(UTC)))
    # No wake: the processor's poll finds it.
    inbox = await gw.simulator.wait_for_inbox(PHONE, 1, timeout=10)
    assert inbox[0].text.startswith("Payment of 123.00 received. Balance ")
    # Through the service (wakes at once), in Chinese this time.
    await gw.store.write(lambda c: accounts.update(c, acc.id, now=datetime.now(UTC),
                                                   lang="zh"))
    assert gw.notices is not None
    event_id = await gw.notices.raise_event("process.stage", {
        "account_id": acc.id, "stage": "dispatched", "process": "配送单", "ref": "88"})
    inbox = await gw.simulator.wait_for_inbox(PHONE, 2, timeout=10)
    assert inbox[1].text == "配送单88：已发货。"
    ev = await gw.store.read(lambda c: sn.get_event(c, event_id))
    assert ev["processed_at"] is not None and ev["error"] is None


async def test_broadcast_reaches_handsets(gw: Gateway) -> None:
    assert gw.notices is not None
    numbers = ["8613500000101", "8613500000102", "8613500000103"]

    await gw.store.write(lambda c: topics.unsubscribe_all(c, numbers[2],
                                                          now=datetime.now(UTC)))
    bid = await gw.notices.create_broadcast(name="e2e", target_kind="list", target=numbers,
                                            text="Stock of 1001 arrived", priority=2)
    for n in numbers[:2]:
        inbox = await gw.simulator.wait_for_inbox(n, 1, timeout=10)
        assert inbox[0].text == "Stock of 1001 arrived"
    # The runner marks it done in a write of its own after queueing: on a loaded machine the
    # handsets can have their texts first.
    deadline = asyncio.get_running_loop().time() + 10
    while (b := await gw.notices.get_broadcast(bid))["status"] == "running":
        assert asyncio.get_running_loop().time() < deadline, b
        await asyncio.sleep(0.05)
    assert (b["status"], b["total"], b["queued"], b["skipped"]) == ("done", 3, 2, 1)
    assert gw.simulator.handset(numbers[2]).inbox == []


async def test_sms_order_raises_order_received(gw: Gateway) -> None:
    await gw.simulator.inject_mo(PHONE, "10690", "ORD 123456 1001*1")
    inbox = await gw.simulator.wait_for_inbox(PHONE, 2, timeout=15)
    texts = [m.text for m in inbox]
    assert any("received" in t or "已收到" in t for t in texts), texts
