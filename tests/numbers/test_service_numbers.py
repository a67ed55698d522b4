"""Several service numbers on one gateway: an MO to a sub-code gets that number's keyword
handling and language, and its reply comes from that number (real SMPP via the simulator)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from commands.rules import save_rule, validate_rule
from gateway.app import Gateway
from gateway.numbers import NumbersFileError, parse_numbers
from store import admin
from tests.api.conftest import make_settings

MAIN, SUB = "10690", "1069088"
PHONE = "8613800000055"


@pytest.fixture
async def gw(db_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    path = tmp_path / "numbers.yaml"
    path.write_text(f"""
numbers:
  - number: "{MAIN}"
  - number: "{SUB}"
    name: hotline
    keywords: [HELP]
    language: zh
""")
    gateway = Gateway(make_settings(db_url, numbers_file=str(path)))
    await gateway.start()
    try:
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        yield gateway
    finally:
        await gateway.stop()


async def text(gw: Gateway, dest: str, body: str) -> tuple[str, str]:
    before = len(gw.simulator.handset(PHONE).inbox)
    await gw.simulator.inject_mo(PHONE, dest, body)
    inbox = await gw.simulator.wait_for_inbox(PHONE, before + 1, timeout=10)
    return inbox[before].source_addr, inbox[before].text


async def test_sub_code_keywords_language_rules_and_reply_number(gw: Gateway) -> None:
    # BAL is a command on the main number, not offered on the sub-code.
    source, reply = await text(gw, MAIN, "BAL")
    assert source == MAIN and "E01" not in reply, reply
    source, reply = await text(gw, SUB, "BAL")
    assert source == SUB and reply.startswith("ERR E01"), reply
    assert any("\u4e00" <= ch <= "\u9fff" for ch in reply), reply  # the number's language
    source, reply = await text(gw, SUB, "HELP")
    assert source == SUB and "E01" not in reply
    # A rule naming the sub-code applies there only.
    await gw.store.write(lambda c: save_rule(c, validate_rule({
        "name": "hotline-hours", "keyword": "HOURS", "action": "reply", "priority": 1,
        "argument": "Hotline 24h", "service_number": SUB}), datetime.now(UTC)))
    gw.rules.invalidate()
    assert await text(gw, SUB, "HOURS") == (SUB, "Hotline 24h")
    source, reply = await text(gw, MAIN, "HOURS")
    assert source == MAIN and reply != "Hotline 24h"
    # Statistics by number.
    _, key = await gw.store.write(lambda c: admin.create_api_key(
        c, name="n", role="viewer", now=datetime.now(UTC)))
    # httpx's default 5 s timeout: once exceeded on a loaded machine (the API tests use 20).
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}", timeout=20,
                                 headers={"Authorization": f"Bearer {key}"}) as api:
        rows = {r["number"]: r for r in (await api.get("/numbers")).json()}
    assert rows[SUB]["mo_received"] == 3 and rows[SUB]["mt_sent"] == 3
    assert rows[MAIN]["mo_received"] == 2 and rows[SUB]["keywords"] == ["HELP"]


def test_numbers_file_errors_are_clear() -> None:
    with pytest.raises(NumbersFileError, match="must be digits"):
        parse_numbers({"numbers": [{"number": "10690x"}]})
    with pytest.raises(NumbersFileError, match=r"unknown command\(s\) \['NOPE'\]"):
        parse_numbers({"numbers": [{"number": "1"}, {"number": "12", "keywords": ["nope"]}]})
    with pytest.raises(NumbersFileError, match="listed twice"):
        parse_numbers({"numbers": [{"number": "1"}, {"number": "1"}]})
    plan = parse_numbers({"numbers": [{"number": "10690"}, {"number": "1069088"}]})
    assert plan.match("106908812").number == "1069088"  # type: ignore[union-attr]
    assert plan.match("1069012").number == "10690"  # type: ignore[union-attr]
    assert plan.match("95555") is None


async def _api_key(gw: Gateway) -> str:
    _, key = await gw.store.write(lambda c: admin.create_api_key(
        c, name="b", role="admin", now=datetime.now(UTC)))
    return key


async def test_broadcast_goes_out_from_the_named_service_number(gw: Gateway) -> None:
    key = await _api_key(gw)
    # httpx's default 5 s timeout: once exceeded on a loaded machine (the API tests use 20).
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}", timeout=20,
                                 headers={"Authorization": f"Bearer {key}"}) as api:
        bad = await api.post("/broadcasts", json={
            "name": "x", "target_kind": "list", "target": [PHONE], "text": "hi",
            "service_number": "95555"})
        assert bad.status_code == 422, bad.text
        assert "95555" in bad.text and SUB in bad.text  # names the number and the choices
        before = len(gw.simulator.handset(PHONE).inbox)
        made = await api.post("/broadcasts", json={
            "name": "hotline news", "target_kind": "list", "target": [PHONE],
            "text": "Hotline news", "service_number": SUB})
        assert made.status_code == 201, made.text
        assert made.json()["service_number"] == SUB
        default = await api.post("/broadcasts", json={
            "name": "main news", "target_kind": "list", "target": [PHONE],
            "text": "Main news"})
        assert default.status_code == 201 and default.json()["service_number"] is None
    inbox = await gw.simulator.wait_for_inbox(PHONE, before + 2, timeout=15)
    sources = {m.text: m.source_addr for m in inbox[before:]}
    assert sources == {"Hotline news": SUB, "Main news": MAIN}


async def test_redelivered_mo_replay_comes_from_the_number_texted(gw: Gateway) -> None:
    """A replayed reply (not a read-only command: the original's answer is re-sent) goes out
    from the number the person texted, as the fresh reply did."""
    await gw.store.write(lambda c: save_rule(c, validate_rule({
        "name": "hotline-open", "keyword": "OPENING", "action": "reply", "priority": 1,
        "argument": "Open 9-5", "service_number": SUB}), datetime.now(UTC)))
    gw.rules.invalidate()
    before = len(gw.simulator.handset(PHONE).inbox)
    ids = await gw.simulator.inject_mo(PHONE, SUB, "OPENING")
    await gw.simulator.wait_delivered(ids)
    gw.simulator.drop_connections()
    await gw.simulator.wait_for_inbox(PHONE, before + 1, timeout=10)
    await gw.simulator.redeliver(ids[0], timeout=10)
    inbox = await gw.simulator.wait_for_inbox(PHONE, before + 2, timeout=10)
    assert [(m.source_addr, m.text) for m in inbox[before:]] == [(SUB, "Open 9-5")] * 2
    rows = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT disposition FROM inbound_messages WHERE duplicate_of IS NOT NULL").all())
    assert [r[0] for r in rows] == ["replayed_duplicate"]
