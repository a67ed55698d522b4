"""Receipts over real SMPP (simulator → gateway), on SQLite and PostgreSQL.

A malformed receipt is stored (raw) and acknowledged with ESME_ROK: answering an error made
the SMSC redeliver it forever (issue 9, the poison receipt). A receipt parked unmatched is
matched by the gateway's own receipt sweep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.app import Gateway
from gateway.smpp import status as st
from store import outbound
from store.models import outbound_parts, pending_receipts
from tests.test_e2e import make_settings, wait_until

RECEIPT_ESM = 0x04


@pytest.fixture
async def gw(db_url: str) -> AsyncIterator[Gateway]:
    gateway = Gateway(make_settings(db_url, receipt_retry_interval=0.1))
    await gateway.start(api=False)
    try:
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        yield gateway
    finally:
        await gateway.stop()


async def _send_receipt(gw: Gateway, short_message: bytes, data_coding: int,
                        **tlvs: Any) -> int:
    """The simulator sends one deliver_sm receipt on its bind; the gateway's answer status."""
    sim = gw.simulator
    assert sim is not None
    conn = await sim._pick_receiver(None)
    params: dict[str, Any] = {
        "service_type": "", "source_addr": "8613800000001", "destination_addr": "10690",
        "esm_class": RECEIPT_ESM, "protocol_id": 0, "priority_flag": 0,
        "registered_delivery": 0, "data_coding": data_coding, "short_message": short_message,
        **tlvs}
    resp = await conn.request("deliver_sm", params, timeout=5)
    assert resp.command == "deliver_sm_resp"
    return resp.status


async def _pending_raw(gw: Gateway) -> list[str]:
    assert gw.store is not None
    return await gw.store.read(lambda c: list(c.execute(
        sa.select(pending_receipts.c.raw).order_by(pending_receipts.c.id)).scalars()))


@pytest.mark.parametrize(("short_message", "data_coding"), [
    (b"id:a sub:\xb2 stat:DELIVRD", 3),  # '²': str.isdigit() but not int()
    (b"id:a sub:001 dlvrd:\xb9 submit date:\xb2\xb2 stat:DELIVRD err:\xb3", 3),
    (b"id:b\x00c stat:DELIVRD err:99999999999999999999", 0),  # NUL; err beyond int32
    (b"id:" + b"9" * 200 + b" stat:DELIVRD", 1),  # an id longer than any column
    ("id:d stat:DELIVRD err:٩٩٩٩٩٩٩٩٩٩٩٩".encode("utf-16-be"), 8),
    (b"\xd8\x00\x00i\x00d\x00:\x00e\x00 \x00s\x00t\x00a\x00t\x00:\x00X", 8),  # lone surrogate
])
async def test_malformed_receipt_is_stored_and_acknowledged(
        gw: Gateway, short_message: bytes, data_coding: int) -> None:
    assert await _send_receipt(gw, short_message, data_coding) == st.ESME_ROK
    raw = await _pending_raw(gw)
    assert len(raw) == 1 and "stat:" in raw[0]


async def test_parked_receipt_is_matched_by_the_sweep(gw: Gateway) -> None:
    """A receipt whose part was written by a transaction it could not see (the PostgreSQL
    race of tests/store/test_receipts.py) is matched by the running gateway on its own."""
    assert gw.store is not None
    mt_id = await gw.enqueue("8613800000009", "hello")
    await wait_until(lambda: _delivered(gw, mt_id), timeout=10)
    # Rewind the message to "submitted" under an id the SMSC never used, park a receipt for
    # that id, then let the part carry it, as a committed-late part write would.
    def rewind(c: sa.Connection) -> None:
        c.execute(sa.update(outbound_parts).where(outbound_parts.c.message_id == mt_id)
                  .values(smsc_message_id=None, status="submitted"))
        c.exec_driver_sql("UPDATE outbound_messages SET status = 'submitted' WHERE id = "
                          f"{int(mt_id)}")
    await gw.store.write(rewind)
    assert await _send_receipt(gw, b"id:5eed stat:DELIVRD", 0) == st.ESME_ROK
    assert len(await _pending_raw(gw)) == 1
    await gw.store.write(lambda c: c.execute(sa.update(outbound_parts).where(
        outbound_parts.c.message_id == mt_id).values(smsc_message_id="5eed")))
    await wait_until(lambda: _delivered(gw, mt_id), timeout=10)
    assert await _pending_raw(gw) == []


async def _delivered(gw: Gateway, mt_id: int) -> bool:
    assert gw.store is not None
    found = await gw.store.read(lambda c: outbound.get_message(c, mt_id))
    return found is not None and found["status"] == "delivered"
