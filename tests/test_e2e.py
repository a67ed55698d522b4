"""End to end over real loopback TCP: handset → simulator → gateway → store → reply → handset.

Each test starts the real `Gateway` (as `smsgw up` does) with the bundled simulator on
ephemeral ports, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.config import Settings
from store import inbound, outbound

SHORT_CODE = "10690"
PHONE = "8613800000001"


async def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll an async or sync predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def make_settings(db_url: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        database_url=db_url, sim_port=0, sim_control_port=0, api_port=0,
        sim_receipt_delay=0.05, poll_interval=0.1, reconnect_min=0.05, reconnect_max=0.5,
        source_addr=SHORT_CODE, instance="test-instance")
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
async def gw(db_url: str) -> AsyncIterator[Gateway]:
    gateway = Gateway(make_settings(db_url))
    await gateway.start()
    try:
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        yield gateway
    finally:
        await gateway.stop()


async def message_status(gw: Gateway, mt_id: int) -> str | None:
    assert gw.store is not None
    found = await gw.store.read(lambda c: outbound.get_message(c, mt_id))
    return found["status"] if found else None


async def test_help_round_trip_and_receipt(gw: Gateway) -> None:
    sim = gw.simulator
    await sim.inject_mo(PHONE, SHORT_CODE, "HELP")
    inbox = await sim.wait_for_inbox(PHONE, 1, timeout=10)
    assert inbox[0].text.startswith("Commands:")
    assert "HELP" in inbox[0].text
    assert inbox[0].source_addr == SHORT_CODE

    # The store holds the MO (processed) and the reply, which the receipt marks delivered.
    mo = await gw.store.read(lambda c: inbound.unprocessed_mos(c, 10))
    assert mo == []
    rows = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT id, priority, in_reply_to FROM outbound_messages").all())
    assert len(rows) == 1
    mt_id, priority, in_reply_to = rows[0]
    assert priority == 1 and in_reply_to is not None
    assert await wait_until(lambda: _is(gw, mt_id, "delivered"))
    history = (await gw.store.read(lambda c: outbound.get_message(c, mt_id)))["events"]
    statuses = [e["status"] for e in history]
    assert statuses[:1] == ["queued"] and statuses[-1] == "delivered"
    assert "submitted" in statuses


async def _is(gw: Gateway, mt_id: int, status: str) -> bool:
    return await message_status(gw, mt_id) == status


async def test_chinese_help_gets_chinese_reply(gw: Gateway) -> None:
    await gw.simulator.inject_mo(PHONE, SHORT_CODE, "帮助")
    inbox = await gw.simulator.wait_for_inbox(PHONE, 1, timeout=10)
    assert inbox[0].text.startswith("指令") or "可用指令" in inbox[0].text


async def test_unknown_command_gets_e01(gw: Gateway) -> None:
    await gw.simulator.inject_mo(PHONE, SHORT_CODE, "FOO 123")
    inbox = await gw.simulator.wait_for_inbox(PHONE, 1, timeout=10)
    assert inbox[0].text.startswith("ERR E01")
    assert "FOO" in inbox[0].text and "HELP" in inbox[0].text


async def test_redelivered_read_only_mo_is_answered_again(gw: Gateway) -> None:
    """The SMSC redelivers (our ack may be lost: the session dropped right after it). The
    redelivery is stored as such, and a read-only command is simply answered again."""
    ids = await gw.simulator.inject_mo(PHONE, SHORT_CODE, "HELP")
    await gw.simulator.wait_delivered(ids)
    gw.simulator.drop_connections()
    await gw.simulator.wait_for_inbox(PHONE, 1, timeout=10)
    await gw.simulator.redeliver(ids[0], timeout=10)
    inbox = await gw.simulator.wait_for_inbox(PHONE, 2, timeout=10)
    assert [m.text[:9] for m in inbox] == ["Commands:", "Commands:"]
    rows = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT id, duplicate_of, disposition FROM inbound_messages ORDER BY id").all())
    assert [(r[1], r[2]) for r in rows] == [(None, "answered"), (rows[0][0], "answered")]


async def test_reconnect_after_drop_loses_no_queued_reply(gw: Gateway) -> None:
    binds_before = gw.client.binds
    gw.simulator.drop_connections()
    # Queued while the link is down (or coming back): must still arrive.
    ids = [await gw.enqueue(PHONE, f"notice {i}") for i in range(5)]
    await wait_until(lambda: gw.client.binds > binds_before, timeout=10)
    inbox = await gw.simulator.wait_for_inbox(PHONE, 5, timeout=15)
    assert sorted(m.text for m in inbox) == [f"notice {i}" for i in range(5)]
    for mt_id in ids:
        assert await wait_until(lambda m=mt_id: _is(gw, m, "delivered"))


async def test_long_chinese_message_arrives_whole(gw: Gateway) -> None:
    text = "您的订单已收到，" * 20  # 160 UCS2 characters → 3 parts
    mt_id = await gw.enqueue(PHONE, text)
    inbox = await gw.simulator.wait_for_inbox(PHONE, 1, timeout=10)
    assert inbox[0].text == text
    found = await wait_until(lambda: _is(gw, mt_id, "delivered"))
    assert found
    msg = await gw.store.read(lambda c: outbound.get_message(c, mt_id))
    assert msg["parts"] == 3 and len(msg["parts_detail"]) == 3


async def test_api_send_status_and_cancel(gw: Gateway) -> None:
    from datetime import UTC, datetime

    from store import admin

    _, key = await gw.store.write(lambda c: admin.create_api_key(
        c, name="e2e", role="operator", now=datetime.now(UTC)))
    base = f"http://127.0.0.1:{gw.api_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10,
                                 headers={"Authorization": f"Bearer {key}"}) as http:
        r = await http.post("/messages", json={"to": PHONE, "text": "Payment received"})
        assert r.status_code == 202, r.text
        mt_id = r.json()["id"]
        await gw.simulator.wait_for_inbox(PHONE, 1, timeout=10)
        await wait_until(lambda: _is(gw, mt_id, "delivered"))
        r = await http.get(f"/messages/{mt_id}")
        assert r.status_code == 200 and r.json()["status"] == "delivered"
        # Too late to cancel a delivered message; a scheduled one can be.
        assert (await http.post(f"/messages/{mt_id}/cancel")).status_code == 409
        r = await http.post("/messages", json={"to": PHONE, "text": "later",
                                               "schedule_at": "2099-01-01T00:00:00Z"})
        later = r.json()["id"]
        r = await http.post(f"/messages/{later}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert (await http.get("/messages/999999")).status_code == 404
        bad = await http.post("/messages", json={"to": "not-a-number", "text": "x"})
        assert bad.status_code == 422
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["smsc_bound"] is True
        metrics = (await http.get("/metrics")).text
        assert "smsgw_queue_depth" in metrics and "smsgw_binds_up" in metrics


async def test_unprocessed_mo_is_processed_on_restart(db_url: str) -> None:
    """A crash after the ack but before processing: the next start processes the MO."""
    from datetime import UTC, datetime

    from store.store import Store

    store = await asyncio.to_thread(Store.open, db_url)
    try:
        await store.write(lambda c: inbound.insert_mo(
            c, connection="smsc1", dedup_key="crash-test", source_addr=PHONE,
            dest_addr=SHORT_CODE, text="HELP", data_coding=0, esm_class=0,
            short_message=b"HELP", now=datetime.now(UTC)))
    finally:
        await store.close()
    gateway = Gateway(make_settings(db_url))
    await gateway.start(api=False)
    try:
        inbox = await gateway.simulator.wait_for_inbox(PHONE, 1, timeout=10)
        assert inbox[0].text.startswith("Commands:")
    finally:
        await gateway.stop()


async def test_same_text_after_a_confirmed_ack_is_a_new_message(db_url: str) -> None:
    """Our ack went out on a session that stayed up past the SMSC's response timeout: the
    SMSC has it and will not redeliver, so the same text again is the person's new MO."""
    gateway = Gateway(make_settings(db_url, smsc_response_timeout=0.3))
    await gateway.start(api=False)
    try:
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        await gateway.simulator.inject_mo(PHONE, SHORT_CODE, "HELP")
        await gateway.simulator.wait_for_inbox(PHONE, 1, timeout=10)
        await wait_until(lambda: gateway.store.read(lambda c: c.exec_driver_sql(
            "SELECT ack_confirmed FROM inbound_messages").scalar()))
        await gateway.simulator.inject_mo(PHONE, SHORT_CODE, "HELP")
        inbox = await gateway.simulator.wait_for_inbox(PHONE, 2, timeout=10)
        assert [m.text[:9] for m in inbox] == ["Commands:", "Commands:"]
        dup = await gateway.store.read(lambda c: c.exec_driver_sql(
            "SELECT count(*) FROM inbound_messages WHERE duplicate_of IS NOT NULL").scalar())
        assert dup == 0
    finally:
        await gateway.stop()
