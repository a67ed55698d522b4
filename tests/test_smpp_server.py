"""The SMPP server interface, driven by smpplib's synchronous Client as the upstream app.

Real parts end to end: the application binds to the gateway's SMPP server, its submit_sm
enters our queue, goes out to the simulator (the SMSC), the handset gets it, the simulator's
receipt comes back to the gateway and from there to the application as a deliver_sm.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import smpplib.client
import smpplib.exceptions

from commands.pins import hash_password
from commands.rules import save_rule, validate_rule
from gateway.app import Gateway
from gateway.config import Settings
from gateway.smpp.text import decode_text, parse_receipt
from store import upstream

APP, APP_PASSWORD = "crm", "s3cret"
PHONE = "8613800000055"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = Gateway(Settings(
        database_url=f"sqlite:///{tmp_path / 'up.db'}", sim_port=0, sim_control_port=0,
        api_port=0, smpp_server_port=0, sim_receipt_delay=0.05, poll_interval=0.05,
        instance="upstream-test"))
    await gateway.start(api=False)
    now = datetime.now(UTC)
    await gateway.store.write(lambda c: upstream.create_account(
        c, system_id=APP, password_hash=hash_password(APP_PASSWORD), now=now))
    # A rule forwards MOs that start with APP to the application.
    rule = validate_rule({"name": "to-crm", "priority": 10, "keyword": "APP",
                          "action": "forward", "argument": APP})
    await gateway.store.write(lambda c: save_rule(c, rule, now))
    gateway.rules.invalidate()
    await gateway.client.wait_bound()
    yield gateway
    await gateway.stop()


class App:
    """smpplib's Client in a thread: bind, submit, collect deliver_sm."""

    def __init__(self, port: int, password: str = APP_PASSWORD):
        self.client = smpplib.client.Client("127.0.0.1", port, timeout=0.2,
                                            allow_unknown_opt_params=True)
        self.password = password
        self.received: list[Any] = []
        self.submit_resps: list[Any] = []
        self.client.set_message_received_handler(lambda pdu: self.received.append(pdu))
        self.client.set_message_sent_handler(lambda pdu: self.submit_resps.append(pdu))

    def bind(self) -> None:
        self.client.connect()
        # The password check (scrypt) can outlast the 0.2 s read tick on a busy machine.
        self.client._socket.settimeout(10.0)
        try:
            self.client.bind_transceiver(system_id=APP, password=self.password)
        finally:
            self.client._socket.settimeout(0.2)

    def submit(self, text: bytes, to: str = PHONE) -> None:
        self.client.send_message(source_addr="10690", destination_addr=to,
                                 short_message=text, data_coding=0, registered_delivery=1)

    def read_until(self, done: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done():
            with contextlib.suppress(TimeoutError):
                self.client.read_once()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.unbind()
        self.client.disconnect()


async def test_submit_reaches_handset_and_receipt_comes_back(gw: Gateway) -> None:
    app = App(gw.upstream_server.port)
    await asyncio.to_thread(app.bind)
    try:
        await asyncio.to_thread(app.submit, b"Your parcel is on its way")
        await asyncio.to_thread(app.read_until,
                                lambda: app.submit_resps and app.received)
        message_id = app.submit_resps[0].message_id.decode()
        assert message_id.isdigit()
        [msg] = await gw.simulator.wait_for_inbox(PHONE, 1)
        assert msg.text == "Your parcel is on its way"
        receipt = app.received[0]
        assert receipt.esm_class & 0x04
        # From the phone (international, ISDN) to the app's own address (as it wrote it).
        assert (receipt.source_addr.decode(), receipt.source_addr_ton,
                receipt.source_addr_npi) == (PHONE, 1, 1)
        assert (receipt.destination_addr.decode(), receipt.dest_addr_ton) == ("10690", 0)
        assert receipt.receipted_message_id.decode() == message_id
        parsed = parse_receipt(receipt.short_message.decode())
        assert parsed is not None and parsed.id == message_id and parsed.stat == "DELIVRD"
        found = await gw.store.read(lambda c: c.exec_driver_sql(
            "SELECT upstream, priority FROM outbound_messages WHERE id = ?",
            (int(message_id),)).one())
        assert tuple(found) == (APP, 2)  # priority_flag 0 → transactional
    finally:
        await asyncio.to_thread(app.close)


async def test_wrong_password_is_refused(gw: Gateway) -> None:
    app = App(gw.upstream_server.port, password="wrong")
    with pytest.raises(smpplib.exceptions.PDUError) as err:
        await asyncio.to_thread(app.bind)
    assert err.value.args[1] == 0x0D  # ESME_RBINDFAIL: the reason is not told (enumeration)
    app.client.disconnect()


async def test_forwarded_mo_is_stored_until_the_app_binds(gw: Gateway) -> None:
    # Not bound: the MO waits in the store.
    await gw.simulator.inject_mo(PHONE, "10690", "APP where is my order 42?")
    await asyncio.sleep(0.5)
    pending = await gw.store.read(lambda c: upstream.pending_for(c, APP))
    assert [p["text"] for p in pending] == ["APP where is my order 42?"]
    # The app binds: it gets the MO, in order, and it is marked delivered.
    app = App(gw.upstream_server.port)
    await asyncio.to_thread(app.bind)
    try:
        await asyncio.to_thread(app.read_until, lambda: app.received)
        mo = app.received[0]
        assert decode_text(mo.short_message, mo.data_coding) == "APP where is my order 42?"
        assert (mo.source_addr.decode(), mo.source_addr_ton, mo.source_addr_npi) == (PHONE, 1, 1)
        await asyncio.sleep(0.2)
        assert await gw.store.read(lambda c: upstream.pending_for(c, APP)) == []
    finally:
        await asyncio.to_thread(app.close)


async def test_receipts_wait_across_a_reconnect(gw: Gateway) -> None:
    app = App(gw.upstream_server.port)
    await asyncio.to_thread(app.bind)
    await asyncio.to_thread(app.submit, b"first")
    await asyncio.to_thread(app.read_until, lambda: app.submit_resps)
    message_id = app.submit_resps[0].message_id.decode()
    await asyncio.to_thread(app.close)  # gone before the receipt comes back
    await gw.simulator.wait_for_inbox(PHONE, 1)
    await asyncio.sleep(0.5)
    owed = await gw.store.read(lambda c: upstream.pending_for(c, APP))
    assert [o["message_id"] for o in owed] == [message_id]
    again = App(gw.upstream_server.port)
    await asyncio.to_thread(again.bind)
    try:
        await asyncio.to_thread(again.read_until, lambda: again.received)
        assert again.received[0].receipted_message_id.decode() == message_id
    finally:
        await asyncio.to_thread(again.close)


async def test_a_message_that_expires_unsent_still_gets_its_receipt(gw: Gateway) -> None:
    app = App(gw.upstream_server.port)
    await asyncio.to_thread(app.bind)
    try:
        # Scheduled 30 s out but valid for 1 s only: it expires in the queue, never sent.
        await asyncio.to_thread(
            app.client.send_message, source_addr="10690", destination_addr=PHONE,
            short_message=b"too late", data_coding=0, registered_delivery=1,
            schedule_delivery_time="000000000030000R", validity_period="000000000001000R")
        await asyncio.to_thread(app.read_until, lambda: app.received, 15.0)
        message_id = app.submit_resps[0].message_id.decode()
        receipt = app.received[0]
        assert receipt.receipted_message_id.decode() == message_id
        parsed = parse_receipt(receipt.short_message.decode())
        assert parsed is not None and parsed.stat == "EXPIRED"
        assert gw.simulator.handset(PHONE).inbox == []
    finally:
        await asyncio.to_thread(app.close)
