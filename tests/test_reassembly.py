"""Long MOs whose parts arrive out of order, twice, or never.

The simulator always sends parts in order, so these tests hand crafted deliver_sm PDUs (UDH
concatenation) to the gateway's real inbound handler; the replies then travel the real path
(store → dispatcher → SMPP → simulator → handset inbox).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import Settings
from gateway.smpp.codec import Pdu

PHONE = "8613800000042"


def part(ref: int, total: int, seq: int, text: str) -> Pdu:
    udh = bytes([5, 0, 3, ref, total, seq])
    return Pdu("deliver_sm", 1, 0, {
        "source_addr": PHONE, "destination_addr": "10690", "esm_class": 0x40,
        "data_coding": 0, "short_message": udh + text.encode("ascii")})


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = Gateway(Settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}", sim_port=0, sim_control_port=0,
        api_port=0, sim_receipt_delay=0.01, poll_interval=0.05, instance="reassembly",
        reassembly_timeout=1.0))
    await gateway.start(api=False)
    await gateway.client.wait_bound()
    yield gateway
    await gateway.stop()


async def test_parts_out_of_order_with_a_repeat_make_one_message(gw: Gateway) -> None:
    await gw.inbound.on_deliver_sm("smsc1", part(7, 3, 3, " ORD"))
    await gw.inbound.on_deliver_sm("smsc1", part(7, 3, 1, "HELP"))
    await gw.inbound.on_deliver_sm("smsc1", part(7, 3, 1, "HELP"))  # a repeated part
    await gw.inbound.on_deliver_sm("smsc1", part(7, 3, 2, " "))
    inbox = await gw.simulator.wait_for_inbox(PHONE, 1, timeout=10)
    assert inbox[0].text.startswith("ORD "), inbox[0].text  # "HELP ORD" (HELP by role)
    await asyncio.sleep(0.3)
    assert len(gw.simulator.handset(PHONE).inbox) == 1
    statuses = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT status, command, disposition, duplicate_of FROM inbound_messages"
        " ORDER BY id").all())
    # The repeated part is stored too (operators see it) as a redelivery of the first copy
    # (no ack confirmed: this test hands PDUs in without a session), and changes nothing.
    first = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT min(id) + 1 FROM inbound_messages").scalar())
    assert [tuple(r) for r in statuses] == [
        ("processed", "HELP", "answered", None), ("processed", "HELP", "answered", None),
        ("processed", None, "duplicate_part", first), ("processed", "HELP", "answered", None)]


async def test_incomplete_message_gets_a_clear_reply(gw: Gateway) -> None:
    await gw.inbound.on_deliver_sm("smsc1", part(9, 2, 1, "ORD 123456 1001*1"))
    inbox = await gw.simulator.wait_for_inbox(PHONE, 1, timeout=10)
    assert "incomplete" in inbox[0].text.lower(), inbox[0].text
    row = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT status, command, disposition FROM inbound_messages").one())
    assert tuple(row) == ("processed", "INCOMPLETE", "incomplete")


async def test_the_wait_counts_from_the_newest_part(gw: Gateway) -> None:
    """Parts handed over slowly, each within the timeout (1 s here) of the one before but
    together spanning more than it, still make one message (an SMSC slowed down does this)."""
    await gw.inbound.on_deliver_sm("smsc1", part(21, 3, 1, "HELP"))
    await asyncio.sleep(0.7)
    await gw.inbound.on_deliver_sm("smsc1", part(21, 3, 2, " "))
    await asyncio.sleep(0.7)
    await gw.inbound.on_deliver_sm("smsc1", part(21, 3, 3, "ORD"))
    inbox = await gw.simulator.wait_for_inbox(PHONE, 1, timeout=10)
    assert inbox[0].text.startswith("ORD "), inbox[0].text
    rows = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT disposition FROM inbound_messages ORDER BY id").all())
    assert [r[0] for r in rows] == ["answered"] * 3


async def test_waiting_parts_survive_a_restart(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}", sim_port=0, sim_control_port=0,
        api_port=0, sim_receipt_delay=0.01, poll_interval=0.05, instance="reassembly")
    first = Gateway(settings)
    await first.start(api=False)
    await first.client.wait_bound()
    await first.inbound.on_deliver_sm("smsc1", part(11, 2, 1, "HELP"))
    await first.stop()
    second = Gateway(settings)
    await second.start(api=False)
    try:
        await second.client.wait_bound()
        await second.inbound.on_deliver_sm("smsc1", part(11, 2, 2, " SAL"))
        inbox = await second.simulator.wait_for_inbox(PHONE, 1, timeout=10)
        assert inbox[0].text.startswith("SAL "), inbox[0].text
    finally:
        await second.stop()
