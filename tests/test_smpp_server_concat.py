"""The SMPP server takes long messages the way real clients send them (issue 8, defect 6).

smpplib's own client splits a long text with a UDH (its default) or with sar_* TLVs, or puts
it in message_payload; the gateway joins the parts into ONE outbound message, the bundled
simulator's handset gets it exactly once and exactly, and the application gets one receipt
per part it submitted, carrying the id it got for that part.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import smpplib.consts
import smpplib.gsm

from commands.pins import hash_password
from gateway.app import Gateway
from gateway.config import Settings
from gateway.smpp.text import parse_receipt
from store import upstream

from .test_smpp_server import APP, APP_PASSWORD, PHONE, App

# A GSM escape pair lands across smpplib's 153-octet split (ESC ends part 1), and a UTF-16
# surrogate pair across its 134-octet split: joining must work on octets, not per part.
GSM_LONG = "a" * 152 + "€ is the euro; {braces} and [brackets] too. " + "Long text. " * 20
UCS2_LONG = "中" * 66 + "😀" + "您的订单已收到，谢谢！" * 12


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        database_url=f"sqlite:///{tmp_path / 'up.db'}", sim_port=0, sim_control_port=0,
        api_port=0, smpp_server_port=0, sim_receipt_delay=0.05, poll_interval=0.05,
        instance="upstream-concat-test")
    base.update(overrides)
    return Settings(**base)


async def _start(settings: Settings, *, account: bool = True) -> Gateway:
    gateway = Gateway(settings)
    await gateway.start(api=False)
    if account:
        now = datetime.now(UTC)
        await gateway.store.write(lambda c: upstream.create_account(
            c, system_id=APP, password_hash=hash_password(APP_PASSWORD), now=now))
    await gateway.client.wait_bound()
    return gateway


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = await _start(_settings(tmp_path))
    yield gateway
    await gateway.stop()


class ConcatApp(App):
    """App that also records error responses instead of raising in read_once."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.errors: list[Any] = []
        self.client.set_error_pdu_handler(lambda pdu: self.errors.append(pdu))

    def send(self, short_message: bytes, *, data_coding: int = 0, esm_class: int = 0,
             to: str = PHONE, registered_delivery: int = 1, **kw: Any) -> None:
        self.client.send_message(source_addr="10690", destination_addr=to,
                                 short_message=short_message, data_coding=data_coding,
                                 esm_class=esm_class, registered_delivery=registered_delivery,
                                 **kw)

    def resp_ids(self) -> list[str]:
        return [r.message_id.decode() for r in self.submit_resps]

    def receipts(self) -> list[Any]:
        return [p for p in self.received if p.esm_class & 0x04]


async def _bound(gw: Gateway) -> ConcatApp:
    app = ConcatApp(gw.upstream_server.port)  # type: ignore[union-attr]
    await asyncio.to_thread(app.bind)
    return app


async def _read(app: ConcatApp, done: Callable[[], bool], timeout: float = 15.0) -> None:
    await asyncio.to_thread(app.read_until, done, timeout)


async def _assert_one_message_and_receipts(gw: Gateway, app: ConcatApp, text: str,
                                           n_parts: int) -> None:
    await _read(app, lambda: len(app.submit_resps) >= n_parts
                and len(app.receipts()) >= n_parts)
    ids = app.resp_ids()
    assert len(ids) == n_parts and len(set(ids)) == n_parts, ids
    [msg] = await gw.simulator.wait_for_inbox(PHONE, 1)
    assert msg.text == text
    receipts = app.receipts()
    assert sorted(r.receipted_message_id.decode() for r in receipts) == sorted(ids)
    for r in receipts:
        parsed = parse_receipt(r.short_message.decode())
        assert parsed is not None and parsed.stat == "DELIVRD"
        assert parsed.id == r.receipted_message_id.decode()
    await asyncio.sleep(0.3)  # nothing more arrives: exactly once
    assert len(gw.simulator.handset(PHONE).inbox) == 1
    assert len(app.receipts()) == n_parts
    rows = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT text, upstream FROM outbound_messages").all())
    assert [tuple(r) for r in rows] == [(text, APP)]  # ONE outbound message


@pytest.mark.parametrize("text", [GSM_LONG, UCS2_LONG], ids=["gsm", "ucs2"])
async def test_udh_long_message_from_smpplib(gw: Gateway, text: str) -> None:
    # Issue 8: every submit_sm with esm_class 0x40 was refused ESME_RINVESMCLASS.
    parts, encoding, esm_class = smpplib.gsm.make_parts(text)
    assert esm_class == smpplib.consts.SMPP_GSMFEAT_UDHI and len(parts) >= 3
    app = await _bound(gw)
    try:
        for part in parts:
            await asyncio.to_thread(app.send, part, data_coding=encoding, esm_class=esm_class)
        await _assert_one_message_and_receipts(gw, app, text, len(parts))
        assert app.errors == []
    finally:
        await asyncio.to_thread(app.close)


async def test_sar_long_message_from_smpplib(gw: Gateway) -> None:
    # Issue 8: sar_* segments were accepted and each went out as its own SMS.
    parts, encoding, esm_class = smpplib.gsm.make_parts(GSM_LONG, use_udhi=False)
    assert esm_class == 0 and len(parts) >= 3
    app = await _bound(gw)
    try:
        for seq, part in enumerate(parts, 1):
            await asyncio.to_thread(app.send, part, data_coding=encoding,
                                    sar_msg_ref_num=0x1234, sar_total_segments=len(parts),
                                    sar_segment_seqnum=seq)
        await _assert_one_message_and_receipts(gw, app, GSM_LONG, len(parts))
    finally:
        await asyncio.to_thread(app.close)


async def test_16bit_reference_out_of_order_with_a_repeated_part(gw: Gateway) -> None:
    text = "Your order 4711 has shipped. " * 12
    data = text.encode("ascii")
    chunks = [data[i:i + 130] for i in range(0, len(data), 130)]
    total = len(chunks)
    udh = [bytes((6, 0x08, 4, 0xAB, 0xCD, total, seq)) for seq in range(1, total + 1)]
    order = list(range(total))
    random.Random(8).shuffle(order)
    app = await _bound(gw)
    try:
        # The first part sent comes again while the message is still incomplete.
        for i in [order[0], order[1], order[0], *order[2:]]:
            await asyncio.to_thread(app.send, udh[i] + chunks[i], esm_class=0x40)
        await _read(app, lambda: len(app.submit_resps) >= total + 1
                    and len(app.receipts()) >= total)
        ids = app.resp_ids()
        assert ids[2] == ids[0]  # the repeated part got the id it got the first time
        assert len(set(ids)) == total
        [msg] = await gw.simulator.wait_for_inbox(PHONE, 1)
        assert msg.text == text
        assert sorted(r.receipted_message_id.decode() for r in app.receipts()) == sorted(
            set(ids))
    finally:
        await asyncio.to_thread(app.close)


async def test_same_reference_reused_for_the_next_message(gw: Gateway) -> None:
    # 8-bit references wrap: a finished message frees its reference.
    parts, encoding, esm_class = smpplib.gsm.make_parts(GSM_LONG)
    app = await _bound(gw)
    try:
        for _ in range(2):
            for part in parts:  # identical parts, identical reference
                await asyncio.to_thread(app.send, part, data_coding=encoding,
                                        esm_class=esm_class)
        await _read(app, lambda: len(app.receipts()) >= 2 * len(parts))
        assert len(set(app.resp_ids())) == 2 * len(parts)
        msgs = await gw.simulator.wait_for_inbox(PHONE, 2)
        assert [m.text for m in msgs] == [GSM_LONG, GSM_LONG]
    finally:
        await asyncio.to_thread(app.close)


async def test_message_payload(gw: Gateway) -> None:
    text = "Invoice 2026-11 is ready: " + "0123456789" * 22  # 246 septets: 2 SMS
    app = await _bound(gw)
    try:
        await asyncio.to_thread(app.send, b"", message_payload=text.encode("ascii"))
        await _read(app, lambda: app.submit_resps and app.receipts())
        [msg] = await gw.simulator.wait_for_inbox(PHONE, 1)
        assert (msg.text, msg.parts) == (text, 2)
        assert app.receipts()[0].receipted_message_id.decode() == app.resp_ids()[0]
    finally:
        await asyncio.to_thread(app.close)


async def test_parts_survive_a_gateway_restart(tmp_path: Path) -> None:
    parts, encoding, esm_class = smpplib.gsm.make_parts(GSM_LONG)
    settings = _settings(tmp_path)
    first = await _start(settings)
    app = await _bound(first)
    try:
        for part in parts[:-1]:
            await asyncio.to_thread(app.send, part, data_coding=encoding, esm_class=esm_class)
        await _read(app, lambda: len(app.submit_resps) >= len(parts) - 1)
    finally:
        await asyncio.to_thread(app.close)
    await first.stop()
    second = await _start(settings, account=False)
    try:
        again = await _bound(second)
        try:
            await asyncio.to_thread(again.send, parts[-1], data_coding=encoding,
                                    esm_class=esm_class)
            await _read(again, lambda: len(again.receipts()) >= len(parts))
            [msg] = await second.simulator.wait_for_inbox(PHONE, 1)
            assert msg.text == GSM_LONG
            # Receipts for the parts submitted before the restart reach the new bind too.
            assert sorted(r.receipted_message_id.decode() for r in again.receipts()) == \
                sorted([*app.resp_ids(), *again.resp_ids()])
        finally:
            await asyncio.to_thread(again.close)
    finally:
        await second.stop()


async def test_incomplete_message_times_out_with_a_failure_receipt_per_part(
        tmp_path: Path) -> None:
    gateway = await _start(_settings(tmp_path, upstream_reassembly_timeout=1.0))
    try:
        parts, encoding, esm_class = smpplib.gsm.make_parts(GSM_LONG)
        app = await _bound(gateway)
        try:
            for part in parts[:2]:  # the third never comes
                await asyncio.to_thread(app.send, part, data_coding=encoding,
                                        esm_class=esm_class)
            await _read(app, lambda: len(app.receipts()) >= 2, timeout=10.0)
            receipts = app.receipts()
            assert sorted(r.receipted_message_id.decode() for r in receipts) == sorted(
                app.resp_ids())
            for r in receipts:
                parsed = parse_receipt(r.short_message.decode())
                assert parsed is not None and parsed.stat == "UNDELIV"
            assert gateway.simulator.handset(PHONE).inbox == []
            count = await gateway.store.read(lambda c: c.exec_driver_sql(
                "SELECT count(*) FROM outbound_messages").scalar_one())
            assert count == 0
        finally:
            await asyncio.to_thread(app.close)
    finally:
        await gateway.stop()


@pytest.mark.parametrize(("dest", "ton", "stored"), [
    ("8613800000055", 1, "8613800000055"),
    ("13800000055", 0, "8613800000055"),  # national, read in the default country (86)
    ("+8613800000055", 0, "8613800000055"),
])
async def test_destination_is_normalised(gw: Gateway, dest: str, ton: int,
                                         stored: str) -> None:
    app = await _bound(gw)
    try:
        await asyncio.to_thread(app.send, b"hello", to=dest, dest_addr_ton=ton)
        await _read(app, lambda: app.submit_resps)
        [msg] = await gw.simulator.wait_for_inbox(stored, 1)
        assert msg.text == "hello"
        row = await gw.store.read(lambda c: c.exec_driver_sql(
            "SELECT dest_addr FROM outbound_messages").scalar_one())
        assert row == stored
    finally:
        await asyncio.to_thread(app.close)


@pytest.mark.parametrize("dest", ["123", "12ab", ""])
async def test_impossible_destination_is_refused(gw: Gateway, dest: str) -> None:
    app = await _bound(gw)
    try:
        await asyncio.to_thread(app.send, b"hello", to=dest)
        await _read(app, lambda: bool(app.errors))
        assert [e.status for e in app.errors] == [0x0B]  # ESME_RINVDSTADR
    finally:
        await asyncio.to_thread(app.close)


@pytest.mark.parametrize(("body", "kw", "status"), [
    (b"   ", {}, 0x01),  # whitespace only: ESME_RINVMSGLEN, as the API's 422 "text is empty"
    # U+0000 (UCS2; in GSM 7-bit octet 0 is '@'): ESME_RSUBMITFAIL
    ("bad\x00char".encode("utf-16-be"), {"data_coding": 8}, 0x45),
    # A long message announcing more parts than SMSGW_MAX_MT_PARTS (10): refused at part 1.
    (b"\x05\x00\x03\x2a\x0b\x01part one", {"esm_class": 0x40}, 0x01),
], ids=["blank", "nul", "too-many-parts"])
async def test_text_the_api_refuses_is_refused_here_too(gw: Gateway, body: bytes,
                                                       kw: dict[str, Any], status: int) -> None:
    """One MT text check (gateway/mt_text.py) for the API, the CLI and the SMPP server."""
    app = await _bound(gw)
    try:
        await asyncio.to_thread(app.send, body, **kw)
        await _read(app, lambda: bool(app.errors))
        assert [e.status for e in app.errors] == [status]
        count = await gw.store.read(lambda c: c.exec_driver_sql(
            "SELECT count(*) FROM outbound_messages").scalar())
        assert count == 0
    finally:
        await asyncio.to_thread(app.close)
