"""MOs in every data_coding family, injected through the simulator as a real SMSC sends them
and decoded exactly by the gateway (issue 8, defect 6: 帮助 with data_coding 0x19 was read as
Latin-1 and answered E01)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.app import Gateway
from gateway.smpp.text import gsm7_encode

from .test_e2e import SHORT_CODE, make_settings, wait_until

# (data_coding, octets as the SMSC sends them, the text the gateway must store)
FAMILIES = [
    (0x00, gsm7_encode("BAL {1}"), "BAL {1}"),
    (0x01, b"BAL 42", "BAL 42"),
    (0x03, "Café BAL".encode("latin-1"), "Café BAL"),
    (0x04, b"BAL \xe9", "BAL \xe9"),
    (0x05, "注文 BAL".encode("shift_jis"), "注文 BAL"),
    (0x06, "Баланс".encode("iso8859_5"), "Баланс"),
    (0x07, "יתרה".encode("iso8859_8"), "יתרה"),
    (0x08, "余额 😀".encode("utf-16-be"), "余额 😀"),
    (0x0A, "注文".encode("iso2022_jp"), "注文"),
    (0x0D, "注文".encode("euc_jp"), "注文"),
    (0x0E, "잔액".encode("euc_kr"), "잔액"),
    (0x11, gsm7_encode("HELP @home"), "HELP @home"),  # general group, GSM 7-bit, class 1
    (0x15, b"BAL \xe9", "BAL \xe9"),  # general group, 8-bit
    (0x19, "帮助".encode("utf-16-be"), "帮助"),  # general group, UCS2, class 1
    (0x48, "查询".encode("utf-16-be"), "查询"),  # automatic deletion, UCS2
    (0xC8, gsm7_encode("BAL"), "BAL"),  # message waiting, discard: GSM 7-bit
    (0xD0, gsm7_encode("BAL"), "BAL"),  # message waiting, store: GSM 7-bit
    (0xE8, "余额".encode("utf-16-be"), "余额"),  # message waiting, store: UCS2
    (0xF0, gsm7_encode("BAL"), "BAL"),  # message class 0, GSM 7-bit
    (0xF5, b"BAL \xe9", "BAL \xe9"),  # message class 1, 8-bit
    (0x0B, gsm7_encode("BAL"), "BAL"),  # reserved: read as GSM 7-bit (TS 23.038)
]


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = Gateway(make_settings(f"sqlite:///{tmp_path / 'dc.db'}"))
    await gateway.start(api=False)
    try:
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        yield gateway
    finally:
        await gateway.stop()


async def test_every_data_coding_family_is_decoded_exactly(gw: Gateway) -> None:
    phones = {}
    for i, (dc, raw, text) in enumerate(FAMILIES):
        phone = f"86139000{i:05d}"
        phones[phone] = text
        await gw.simulator.inject_mo(phone, SHORT_CODE, text, data_coding=dc,
                                     short_message=raw)

    async def stored() -> dict[str, str] | None:
        rows = await gw.store.read(lambda c: c.exec_driver_sql(
            "SELECT source_addr, text FROM inbound_messages").all())
        return dict(rows) if len(rows) == len(FAMILIES) else None  # type: ignore[arg-type]

    assert await wait_until(stored, timeout=15) == phones


async def test_chinese_help_in_the_general_group_gets_the_chinese_help(gw: Gateway) -> None:
    phone = "8613900000999"
    base = f"http://127.0.0.1:{gw.simulator.control_port}"
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/mo", json={"from": phone, "to": SHORT_CODE, "text": "帮助",
                                         "data_coding": 0x19,
                                         "short_message_hex": "帮助".encode("utf-16-be").hex()})
        assert r.status_code == 202, r.text
        assert r.json()["data_coding"] == 0x19
    [reply] = await gw.simulator.wait_for_inbox(phone, 1, timeout=10)
    assert not reply.text.startswith("ERR")
    assert reply.text.startswith("指令") or "可用指令" in reply.text
