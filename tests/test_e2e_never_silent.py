"""Issue 8, "never silent": each defect a person saw, through the simulator and the gateway.

Every MO ends with a recorded disposition, visible in the per-phone interaction log and in
/metrics; a person gets an answer or a recorded reason why not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from commands.demo import load_demo_data
from gateway.app import Gateway
from gateway.smpp.codec import Pdu
from store import admin
from store.models import inbound_messages
from tests.test_e2e import make_settings, wait_until

SHORT = "10690"
RETAILER = "8613800000001"  # R1001, PIN 123456, SMS ordering on
RETAILER2 = "8613800000002"
RETAILER3 = "8613800000003"  # R1003, SMS ordering not enabled
SUBSCRIBER = "8613700000001"  # S3001, balance 123.45
NEWCOMER = "8613600000077"  # not registered; R1004's PIN is 654321


async def started(db_url: str, **overrides: Any) -> Gateway:
    gateway = Gateway(make_settings(db_url, **overrides))
    await gateway.start()
    await gateway.store.write(lambda c: load_demo_data(c, now=datetime.now(UTC)))
    await asyncio.wait_for(gateway.client.wait_bound(), 10)
    return gateway


@pytest.fixture
async def gw(db_url: str) -> AsyncIterator[Gateway]:
    gateway = await started(db_url)
    try:
        yield gateway
    finally:
        await gateway.stop()


async def send(gw: Gateway, phone: str, text: str) -> str:
    before = len(gw.simulator.handset(phone).inbox)
    await gw.simulator.inject_mo(phone, SHORT, text)
    inbox = await gw.simulator.wait_for_inbox(phone, before + 1, timeout=10)
    return inbox[before].text


async def dispositions(gw: Gateway, phone: str) -> list[str | None]:
    """The phone's MO dispositions, oldest first (the API shows the same column; reading the
    store keeps these tests about dispositions, not API keys)."""
    return await gw.store.read(lambda c: list(c.execute(
        sa.select(inbound_messages.c.disposition)
        .where(inbound_messages.c.source_addr == phone)
        .order_by(inbound_messages.c.id)).scalars()))


async def settled(gw: Gateway, count: int) -> None:
    await wait_until(lambda: gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT count(*) FROM inbound_messages WHERE status <> 'received'").scalar() >= count))


async def test_same_text_twice_is_answered_twice(gw: Gateway) -> None:
    """Defect 1: BAL twice 3 s apart got one reply; HELP twice, one reply; BAL, REG, BAL
    from a new phone: nothing for the last BAL, and nothing in the interaction log."""
    first = await send(gw, SUBSCRIBER, "BAL")
    assert first.startswith("Balance")
    assert await send(gw, SUBSCRIBER, "BAL") == first
    assert (await send(gw, SUBSCRIBER, "HELP")).startswith("Commands:")
    assert (await send(gw, SUBSCRIBER, "HELP")).startswith("Commands:")
    assert (await send(gw, NEWCOMER, "BAL")).startswith("ERR E03")
    assert "R1004" in await send(gw, NEWCOMER, "REG R1004 654321")
    # The same BAL text within the SMSC's response timeout (30 s by default): it may be a
    # redelivery, but a read-only command is answered afresh - now with the balance.
    assert (await send(gw, NEWCOMER, "BAL")).startswith("Balance")
    assert await dispositions(gw, NEWCOMER) == ["answered"] * 3
    assert await dispositions(gw, SUBSCRIBER) == ["answered"] * 4
    _, key = await gw.store.write(lambda c: admin.create_api_key(
        c, name="test-viewer", role="viewer", now=datetime.now(UTC)))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}",
                                 headers={"Authorization": f"Bearer {key}"}) as http:
        metrics = (await http.get("/metrics")).text
        mo_in = (await http.get("/messages", params={"direction": "in",
                                                     "phone": NEWCOMER})).json()["items"]
    assert 'smsgw_mo_dispositions_total{disposition="answered"}' in metrics
    assert [m["disposition"] for m in mo_in] == ["answered"] * 3


async def test_stop_is_applied_whatever_the_rate_limit(db_url: str) -> None:
    """Defect 2: ten messages in a minute, then STOP: E12, and the subscription stayed."""
    gw = await started(db_url, rate_limit_messages=3)
    try:
        assert "OUTAGE" in await send(gw, SUBSCRIBER, "SUB OUTAGE")
        assert "PROMO" in await send(gw, SUBSCRIBER, "SUB PROMO")
        await send(gw, SUBSCRIBER, "HELP")
        assert (await send(gw, SUBSCRIBER, "BAL")).startswith("ERR E12")
        await gw.simulator.inject_mo(SUBSCRIBER, SHORT, "BAL")  # told once: silent, recorded
        reply = await send(gw, SUBSCRIBER, "STOP")
        assert not reply.startswith("ERR"), reply
        subs = await gw.store.read(lambda c: c.execute(sa.text(
            "SELECT count(*) FROM subscriptions WHERE phone = :p"), {"p": SUBSCRIBER}).scalar())
        assert subs == 0
        # Another opt-out in the same window: applied, its confirmation not repeated.
        await gw.simulator.inject_mo(SUBSCRIBER, SHORT, "退订")
        await settled(gw, 7)
        assert await dispositions(gw, SUBSCRIBER) == [
            "answered", "answered", "answered", "rate_limited_notified", "rate_limited",
            "answered", "opt_out_reply_limited"]
        opted_out = await gw.store.read(lambda c: c.execute(sa.text(
            "SELECT count(*) FROM opt_outs WHERE phone = :p"), {"p": SUBSCRIBER}).scalar())
        assert opted_out == 1
    finally:
        await gw.stop()


async def test_default_rate_limit_lets_the_walkthrough_through(gw: Gateway) -> None:
    """The README walkthrough (about 12 commands) typed quickly never meets E12."""
    texts = ["HELP", "HELP ORD", "ORD 123456 1001*2", "OQ", "SAL 1001*3", "STK 1001*5",
             "BAL", "SUB OUTAGE", "UNSUB OUTAGE", "Q SALES", "帮助", "查单"]
    for text in texts:
        assert not (await send(gw, RETAILER, text)).startswith("ERR E12"), text


async def test_storm_guard_never_hides_a_different_answer(gw: Gateway) -> None:
    """Defect 3: a retailer with SMS ordering off got E03 once; six more ORDs with
    different PINs got nothing."""
    for pin in ("111111", "222222", "333333", "444444", "555555", "666666"):
        assert (await send(gw, RETAILER3, f"ORD {pin} 1001*1")).startswith("ERR E03")
    # A faulty phone resending the very same text: the same error answer goes once a
    # minute; the suppressed one is recorded with what it would have said.
    assert (await send(gw, RETAILER3, "XYZZY")).startswith("ERR E01")
    await gw.simulator.inject_mo(RETAILER3, SHORT, "XYZZY")
    await settled(gw, 8)
    assert await dispositions(gw, RETAILER3) == ["answered"] * 7 + ["reply_suppressed"]
    withheld = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT detail FROM message_events WHERE direction = 'in' AND status ="
        " 'reply_withheld'").scalar())
    assert withheld.startswith("reply_suppressed: ERR E01")
    assert len(gw.simulator.handset(RETAILER3).inbox) == 7


async def test_receipt_without_id_is_not_taken_for_a_command(gw: Gateway) -> None:
    """Defect: a delivery receipt without an id was processed as an MO, and the subscriber
    got `ERR E01 unknown command 'stat:DELIVRD'`."""
    receipt = Pdu("deliver_sm", 1, 0, {
        "source_addr": SUBSCRIBER, "destination_addr": SHORT, "esm_class": 0x04,
        "data_coding": 0, "short_message": b"stat:DELIVRD err:000"})
    reply = await gw.inbound.on_deliver_sm("smsc1", receipt)
    assert reply.status == 0
    await send(gw, SUBSCRIBER, "HELP")  # the next reply is HELP's: nothing came before it
    assert [m.text[:9] for m in gw.simulator.handset(SUBSCRIBER).inbox] == ["Commands:"]
    assert await dispositions(gw, SUBSCRIBER) == ["receipt_without_id", "answered"]


async def test_every_form_of_a_number_is_one_phone(gw: Gateway) -> None:
    """The MO source in the one phone form: national, international and '+' are one phone;
    an alphanumeric sender stays as it is."""
    for source, ton in (("13700000001", 0), ("8613700000001", 1), ("+8613700000001", 1),
                        ("008613700000001", 0)):
        await gw.inbound.on_deliver_sm("smsc1", Pdu("deliver_sm", 1, 0, {
            "source_addr": source, "source_addr_ton": ton, "destination_addr": SHORT,
            "esm_class": 0, "data_coding": 0, "short_message": b"HELP"}))
    await gw.inbound.on_deliver_sm("smsc1", Pdu("deliver_sm", 1, 0, {
        "source_addr": "ALERTS", "source_addr_ton": 5, "destination_addr": SHORT,
        "esm_class": 0, "data_coding": 0, "short_message": b"HELP"}))
    # One phone sending HELP four times, each answered (HELP changes nothing: a possible
    # redelivery of it is simply answered again).
    inbox = await gw.simulator.wait_for_inbox(SUBSCRIBER, 4, timeout=10)
    assert all(m.text.startswith("Commands:") for m in inbox)
    sources = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT source_addr FROM inbound_messages ORDER BY id").scalars().all())
    assert sources == [SUBSCRIBER] * 4 + ["ALERTS"]


async def test_redelivery_after_a_restart_is_replayed_not_repeated(db_url: str) -> None:
    """The gateway stops before its ack is known to have arrived; the SMSC delivers the
    same ORD again to the next run, however late: the order is placed once, and the person
    gets the same answer again."""
    first = await started(db_url)
    try:
        placed = await send(first, RETAILER, "ORD 123456 1002*1")
        assert placed.startswith("Order"), placed
    finally:
        await first.stop()
    # Much later (within SMSGW_MO_IDENTITY_HOURS): an hour has passed.
    await _age_all_mos(db_url, hours=1)
    second = await started(db_url)
    try:
        again = await send(second, RETAILER, "ORD 123456 1002*1")
        assert again == placed
        orders = await second.store.read(lambda c: c.exec_driver_sql(
            "SELECT count(*) FROM orders").scalar())
        assert orders == 1
        assert await dispositions(second, RETAILER) == ["answered", "replayed_duplicate"]
    finally:
        await second.stop()


async def _age_all_mos(db_url: str, *, hours: float) -> None:
    from datetime import timedelta

    from store.store import Store

    store = await asyncio.to_thread(Store.open, db_url)
    try:
        await store.write(lambda c: c.execute(sa.update(inbound_messages).values(
            received_at=datetime.now(UTC) - timedelta(hours=hours))))
    finally:
        await store.close()
