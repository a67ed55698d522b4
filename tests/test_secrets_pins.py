"""PINs and CFM codes are never in clear: not in the logs (DEBUG included), not in any table
after processing, not in any API read; and processing still sees the real text (issue 9)."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from commands.demo import load_demo_data
from commands.secrets import mask, mask_parts
from gateway import api_keys_cli
from gateway.app import Gateway
from gateway.config import Settings
from store import inbound
from store.models import metadata

SHORT = "10690"
PHONE, NEW_PHONE = "8613800000044", "8613800000055"
REG_PIN, NEW_PIN = "654321", "975310"  # R1004's paper PIN (demo data), then its own


@pytest.mark.parametrize(("text", "masked"), [
    ("PIN 123456 654321", "PIN ****** ******"),
    ("订货123456 1001*5", "订货****** 1001*5"),
    ("订货１２３４５６，1001*5", "订货******，1001*5"),  # as typed: full-width stays
    ("REG r1004 654321", "REG r1004 ******"),
    ("ORD123456 1001*5", "ORD****** 1001*5"),
    ("ord 12345 1001*5", "ord ***** 1001*5"),  # a malformed PIN is still a PIN
    ("MOD 123456 1024 1001*8", "MOD ****** 1024 1001*8"),
    ("CAN 123456 1024", "CAN ****** 1024"), ("RPT 123456", "RPT ******"),
    ("改号123456 13912345678", "改号****** 13912345678"),
    ("确认4821", "确认****"), ("CFM ab12", "CFM ****"),
    ("SAL 0115 1001*12", "SAL 0115 1001*12"), ("hello 123456", "hello 123456"),
    ("HELP ORD", "HELP ORD"), ("", ""),
])
def test_mask(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_mask_parts_as_one_text() -> None:
    assert mask_parts(["订货12", "3456 1001*5"]) == ["订货**", "**** 1001*5"]
    assert mask_parts(["SAL 1001*5", " 1002*3"]) == ["SAL 1001*5", " 1002*3"]


async def test_mo_stored_clear_until_processed_then_masked(store) -> None:  # type: ignore[no-untyped-def]
    """Crash recovery re-reads the stored text: it stays clear while `received`, and the
    transaction that marks it processed masks it (text and raw user data)."""
    now = datetime.now(UTC)
    mo_id, _ = await store.write(lambda c: inbound.insert_mo(
        c, connection="c", dedup_key="k", source_addr=PHONE, dest_addr=SHORT,
        text="PIN 123456 654321", data_coding=0, esm_class=0,
        short_message=b"PIN 123456 654321", now=now))
    rows = await store.read(lambda c: inbound.unprocessed_mos(c, 10))
    assert [r.text for r in rows] == ["PIN 123456 654321"]
    await store.write(lambda c: inbound.mark_mo_processed(c, mo_id, command="PIN", now=now))
    row = await store.read(lambda c: inbound.get_mo(c, mo_id))
    assert (row.text, bytes(row.short_message)) == ("PIN ****** ******", b"PIN ****** ******")


async def _send(gw: Gateway, phone: str, text: str) -> str:
    before = len(gw.simulator.handset(phone).inbox)
    await gw.simulator.inject_mo(phone, SHORT, text)
    inbox = await gw.simulator.wait_for_inbox(phone, before + 1, timeout=10)
    return inbox[before].text


async def test_walkthrough_leaves_no_pin_or_code_in_clear(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    db = tmp_path / "walk.db"
    gw = Gateway(Settings(
        database_url=f"sqlite:///{db}", sim_port=0, sim_control_port=0, api_port=0,
        smpp_server_port=0, sim_receipt_delay=0.05, poll_interval=0.05, instance="pins",
        rate_limit_messages=1000))
    await gw.start()
    reads: list[str] = []
    try:
        await gw.store.write(lambda c: load_demo_data(c, now=datetime.now(UTC)))
        await asyncio.wait_for(gw.client.wait_bound(), 10)
        assert "R1004" in await _send(gw, PHONE, f"REG R1004 {REG_PIN}")
        reply = await _send(gw, PHONE, f"改密{REG_PIN} {NEW_PIN}")
        assert "ERR" not in reply, reply
        reply = await _send(gw, PHONE, f"ORD {NEW_PIN} 1001*1")
        assert re.search(r"Order \d+", reply), reply  # processing saw the real PIN
        # A long message (UCS2, 67 characters a part) whose PIN straddles the two parts.
        long_text = "订货" + "，" * 63 + f"{NEW_PIN} 1002*1"
        assert len(long_text) > 70
        reply = await _send(gw, PHONE, long_text)
        assert "订单" in reply, reply
        # The code goes to the new number only; the reply to the sender does not carry it.
        before = len(gw.simulator.handset(NEW_PHONE).inbox)
        reply = await _send(gw, PHONE, f"CHG {NEW_PIN} {NEW_PHONE}")
        notice = (await gw.simulator.wait_for_inbox(NEW_PHONE, before + 1, 10))[before].text
        found = re.search(r"CFM (\w+)", notice)
        assert found, notice
        code = found.group(1)
        assert code not in reply
        reply = await _send(gw, NEW_PHONE, f"CFM {code}")
        assert "ERR" not in reply, reply
        old_inbox = [m.text for m in gw.simulator.handset(PHONE).inbox]
        assert not any(code in t for t in old_inbox), "the code was echoed to the old number"
        await gw.processor.drain()

        first = await api_keys_cli.first_start_key(gw.store)
        assert first is not None
        async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{gw.api_port}", timeout=20,
                headers={"Authorization": f"Bearer {first.key}"}) as api:
            schema = (await api.get("/openapi.json")).json()
            paths = [p for p, ops in schema["paths"].items()
                     if "get" in ops and "{" not in p and p != "/openapi.json"]
            for path in (*paths, "/messages?direction=in", f"/phones/{PHONE}/interactions",
                         f"/phones/{NEW_PHONE}/interactions"):
                resp = await api.get(path)
                assert resp.status_code == 200, (path, resp.text)
                reads.append(f"{path}: {resp.text}")
        assert any("REG R1004 ******" in r for r in reads)
    finally:
        await gw.stop()
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = [(t.name, row) for t in metadata.sorted_tables
                for row in conn.execute(sa.select(t))]
    engine.dispose()
    dump = "\n".join(f"{name}: {row}" for name, row in rows)
    raw = b"".join(bytes(v) for _, row in rows for v in row if isinstance(v, bytes | memoryview))
    # The bundled simulator is the carrier's SMSC and its handsets: its log is theirs.
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records
                     if not r.name.startswith("smsgw.simulator"))
    assert "mo=" in logs and "inbound_messages:" in dump
    for secret in (REG_PIN, NEW_PIN, code):
        assert secret not in logs, f"{secret!r} in the logs"
        assert secret not in dump, f"{secret!r} in the database"
        for encoded in (secret.encode(), secret.encode("utf-16-be")):
            assert encoded not in raw, f"{secret!r} in raw user data"
        for read in reads:
            assert secret not in read, f"{secret!r} in {read[:80]}"
