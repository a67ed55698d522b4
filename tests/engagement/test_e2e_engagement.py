"""End to end (issue 13): polls and surveys over SMPP through a real Gateway and the bundled
simulator, created and read through the admin API over HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from commands.demo import load_demo_data
from gateway.app import Gateway
from store import admin
from tests.test_e2e import make_settings, wait_until

SHORT = "10690"
RETAILER = "8613800000001"  # R1001, account language zh
PHONES = [f"86135000002{i:02d}" for i in range(1, 8)]  # not registered: the poll's language


async def started(db_url: str) -> Gateway:
    gateway = Gateway(make_settings(db_url, notices_poll_interval=0.1,
                                    rate_limit_messages=1000))
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


async def api(gw: Gateway) -> httpx.AsyncClient:
    _, key = await gw.store.write(lambda c: admin.create_api_key(
        c, name="engage-test", role="operator", now=datetime.now(UTC)))
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}", timeout=20,
                             headers={"Authorization": f"Bearer {key}"})


async def send(gw: Gateway, phone: str, text: str) -> str:
    """Text from ``phone``; the one answer it gets."""
    before = len(gw.simulator.handset(phone).inbox)
    await gw.simulator.inject_mo(phone, SHORT, text)
    inbox = await gw.simulator.wait_for_inbox(phone, before + 1, timeout=10)
    return inbox[before].text


async def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


POLL = {
    "question": {"en": "How was the delivery?", "zh": "配送满意吗？"},
    "options": [
        {"label": {"en": "Good", "zh": "满意"}, "keywords": ["GOOD", "满意", "MY"]},
        {"label": {"en": "Average", "zh": "一般"}, "keywords": ["AVERAGE", "一般", "YB"]},
        {"label": {"en": "Bad", "zh": "不满意"}, "keywords": ["BAD", "不满意", "BMY"]},
    ],
}


async def test_poll_to_a_topic_counts_every_phone_once(gw: Gateway) -> None:
    """Replies by number, English, Chinese, full-width and with a typo; a changed vote; a
    STOP in the middle; a command while the question is open; a redelivery: exact tallies."""
    everyone = [RETAILER, *PHONES[:6]]
    for phone in everyone:
        assert "PROMO" in await send(gw, phone, "SUB PROMO")
    http = await api(gw)
    async with http:
        poll = await ok(await http.post("/polls", json={
            "name": "Delivery", "keyword": "FB", "lang": "en", "target_kind": "topic",
            "target": "PROMO", "poll": POLL, "goal": "rate delivery"}), 201)
        assert poll["status"] == "draft"
        await ok(await http.post(f"/polls/{poll['id']}/start"))
        for phone in everyone:
            inbox = await gw.simulator.wait_for_inbox(phone, 2, timeout=10)
            assert inbox[1].text == ("How was the delivery? 1=Good, 2=Average, 3=Bad. "
                                     "Reply with the number")
        a, b, c, d, e, f, silent = everyone
        # A registered retailer: its account's language; a command still works meanwhile.
        assert (await send(gw, a, "余额")).startswith("余额")
        mo_ids = await gw.simulator.inject_mo(a, SHORT, "1")
        inbox = await gw.simulator.wait_for_inbox(a, 4, timeout=10)
        assert inbox[3].text == "谢谢，您的选择：满意。"
        assert await send(gw, b, "满意") == "谢谢，您的选择：满意。"
        assert await send(gw, c, "ｂａｄ") == "Thank you, your vote: Bad."
        assert await send(gw, d, "AVERAGR") == "Thank you, your vote: Average."
        assert await send(gw, e, "3") == "Thank you, your vote: Bad."
        assert await send(gw, e, "GOOOD") == "Vote changed to: Good. Thank you."
        assert (await send(gw, e, "7")).startswith("ERR E02 '7' is not one of the options 1-3."
                                                   " How was the delivery?")
        assert await send(gw, f, "２") == "Thank you, your vote: Average."
        assert "Unsubscribed" in await send(gw, f, "STOP")
        # STOP ended the question: a later text is no vote (the protocol's E01).
        assert (await send(gw, f, "1")).startswith("ERR E01")
        # An SMSC redelivery of A's vote: the same answer again, no second vote.
        await gw.simulator.redeliver(mo_ids[0], timeout=10)
        inbox = await gw.simulator.wait_for_inbox(a, 5, timeout=10)
        assert inbox[4].text == "谢谢，您的选择：满意。"

        result = await ok(await http.get(f"/polls/{poll['id']}/results"))
        assert [t["votes"] for t in result["tallies"]] == [3, 2, 1]  # a b e | d f | c
        assert result["votes"] == 6
        assert result["not_answered"] == [silent]
        effect = result["effect"]
        assert effect["recipients"] == 7
        assert effect["opt_outs_caused"] == 1
        assert effect["replied"] == 6
        assert effect["response_rate"] == round(6 / 7, 4)
        await wait_until(lambda: _delivered(http, poll["id"], 7))
        votes = await gw.store.read(lambda c: c.execute(sa.text(
            "SELECT count(*) FROM engagement_replies WHERE accepted")).scalar())
        assert votes == 7  # six phones, one of them twice (the changed vote)
        dispositions = await gw.store.read(lambda c: c.execute(sa.text(
            "SELECT disposition FROM inbound_messages WHERE source_addr = :p ORDER BY id"),
            {"p": a}).scalars().all())
        assert dispositions == ["answered", "answered", "answered", "replayed_duplicate"]

        exported = (await http.get(f"/polls/{poll['id']}/export.csv")).content
        assert exported.startswith("\ufeff".encode())
        rows = list(csv.DictReader(io.StringIO(exported.decode("utf-8-sig"))))
        assert {r["phone"]: r["vote"] for r in rows} == {a: "1", b: "1", c: "3", d: "2",
                                                         e: "1", f: "2"}
        groups = await ok(await http.post(f"/polls/{poll['id']}/groups"))
        assert [(g["group"], g["voters"], g["members"]) for g in groups] == [
            ("FB-1", 3, 1), ("FB-2", 2, 0), ("FB-3", 1, 0)]
        closed = await ok(await http.post(f"/polls/{poll['id']}/close"))
        assert closed["status"] == "closed"
        assert await send(gw, c, "FB 2") == "FB is closed. Thank you."


async def _delivered(http: httpx.AsyncClient, poll_id: int, n: int) -> bool:
    r = await http.get(f"/polls/{poll_id}/results")
    return bool(r.json()["effect"]["delivered"] == n)


async def test_survey_reasks_survives_a_restart_and_exports(db_url: str) -> None:
    """The demo's weekly stock survey: a bad answer re-asked, the gateway restarted in the
    middle, the answers kept, one CSV row per respondent."""
    phone, other = PHONES[0], PHONES[1]
    first = await started(db_url)
    try:
        # An unregistered phone typing Latin letters: the survey's language (zh).
        q1 = "中华(硬)1001还有几条？（数字0-500）"
        assert await send(first, phone, "STOCK") == "每周库存调查，共3题。" + q1
        assert await send(first, phone, "lots") == "ERR E02 “lots”不是整数。" + q1
        assert await send(first, phone, "600") == "ERR E02 600不在0-500之间。" + q1
        assert await send(first, phone, "１２") == "本周需要补货吗？（回复 是/否）"
        # Another phone that never texted STOCK: its numbers are no answers.
        assert (await send(first, other, "12")).startswith("ERR E01")
    finally:
        await first.stop()
    second = await started(db_url)
    try:
        assert await send(second, phone, "y") == \
            "本周卖得最好的是？1=1001，2=1002，3=1003。请回复数字"
        assert await send(second, phone, "玉溪") == "谢谢！下周再见。"
        # (Not "STOCK" again: an identical text within the SMSC's response timeout may be a
        # redelivery, answered with the first reply; gateway/inbound.py.)
        assert await send(second, phone, "stock") == "您已回答过Weekly stock / 每周库存。谢谢。"
        http = await api(second)
        async with http:
            surveys = await ok(await http.get("/surveys"))
            sid = next(s["id"] for s in surveys if s["keyword"] == "STOCK")
            result = await ok(await http.get(f"/surveys/{sid}/results"))
            assert result["sessions"] == {"done": 1}
            assert result["responses"][0]["answers"] == {
                "cartons_1001": 12, "restock": True, "best_seller": 2}
            assert result["replies"] == {"accepted": 3, "refused": 2}
            exported = (await http.get(f"/surveys/{sid}/export.csv")).content
            assert exported.startswith(b"\xef\xbb\xbf")
            rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
            assert rows[0] == ["phone", "status", "started_at", "completed_at",
                               "cartons_1001", "restock", "best_seller"]
            assert [rows[1][0], rows[1][1], *rows[1][4:]] == [phone, "done", "12", "yes", "2"]
    finally:
        await second.stop()


async def test_survey_timeout_and_two_open_questions(gw: Gateway) -> None:
    phone = PHONES[2]
    http = await api(gw)
    async with http:
        survey = await ok(await http.post("/surveys", json={
            "name": "Quick", "keyword": "QUICK", "lang": "en", "open_to_all": True,
            "survey": {"questions": [
                {"id": "n", "type": "number", "text": "How many?"},
                {"id": "when", "type": "date", "text": "When?"}],
                "final": "Done, thanks.", "timeout_minutes": 0.05}}), 201)
        await ok(await http.post(f"/surveys/{survey['id']}/start"))
        poll = await ok(await http.post("/polls", json={
            "name": "Delivery", "keyword": "FB", "lang": "en", "target_kind": "list",
            "target": [phone], "poll": POLL}), 201)
        await ok(await http.post(f"/polls/{poll['id']}/start"))
        await gw.simulator.wait_for_inbox(phone, 1, timeout=10)

        assert await send(gw, phone, "QUICK") == "How many? (a number)"
        # Two open questions: the phone is asked which, by keyword.
        assert await send(gw, phone, "2") == ("You have 2 open questions. Reply with its code "
                                              "first: QUICK <answer> (Quick); "
                                              "FB <answer> (Delivery)")
        assert await send(gw, phone, "FB 2") == "Thank you, your vote: Average."
        assert await send(gw, phone, "QUICK 5") == "When? (date YYYYMMDD)"
        await asyncio.sleep(3.5)  # past the 3 s timeout
        # The survey timed out; the poll (already voted) takes the text as a changed vote.
        assert await send(gw, phone, "3") == "Vote changed to: Bad. Thank you."
        result = await ok(await http.get(f"/surveys/{survey['id']}/results"))
        assert result["sessions"] == {"timed_out": 1}
        assert result["responses"][0]["answers"] == {"n": 5}
        # Texting the keyword starts it again from the first question (lower case: the same
        # text as before might be taken for an SMSC redelivery, gateway/inbound.py).
        assert await send(gw, phone, "quick") == "How many? (a number)"
        result = await ok(await http.get(f"/surveys/{survey['id']}/results"))
        assert result["sessions"] == {"open": 1}
        # A pause is said, not silent.
        await ok(await http.post(f"/surveys/{survey['id']}/pause"))
        assert await send(gw, phone, "QUICK 1") == "QUICK is paused; please try again later."
        r = await http.post(f"/surveys/{survey['id']}/pause")
        assert r.status_code == 409, r.text


async def test_campaign_reports_its_effect(gw: Gateway) -> None:
    """A campaign to a list: sent, delivered, replied, response rate, opt-outs, cost."""
    to = PHONES[3:6]
    http = await api(gw)
    async with http:
        bad = await http.post("/polls", json={"name": "x", "keyword": "BAL", "open_to_all": True,
                                              "poll": POLL})
        assert bad.status_code == 422 and "protocol command" in bad.text, bad.text
        bad = await http.post("/campaigns", json={"name": "x", "text": "hi",
                                                  "target_kind": "group", "target": "nope"})
        assert bad.status_code == 422 and "no group 'nope'" in bad.text, bad.text
        campaign = await ok(await http.post("/campaigns", json={
            "name": "Spring promo", "goal": "orders of 1005", "text": "1005 on offer this week",
            "target_kind": "list", "target": to, "reply_window_minutes": 60}), 201)
        cid = campaign["id"]
        started_ = await ok(await http.post(f"/campaigns/{cid}/start"))
        assert started_["broadcast_id"] is not None and started_["closes_at"] is not None
        for phone in to:
            await gw.simulator.wait_for_inbox(phone, 1, timeout=10)
        assert (await send(gw, to[0], "hello")).startswith("ERR E01")  # a reply, counted
        assert "Unsubscribed" in await send(gw, to[1], "STOP")

        async def delivered() -> bool:
            r = await http.get(f"/campaigns/{cid}/results")
            return bool(r.json()["effect"]["delivered"] == 3)

        await wait_until(delivered)
        effect = (await ok(await http.get(f"/campaigns/{cid}/results")))["effect"]
        assert {k: effect[k] for k in ("recipients", "sent", "delivered", "failed", "replied",
                                       "opt_outs_caused")} == {
            "recipients": 3, "sent": 3, "delivered": 3, "failed": 0, "replied": 2,
            "opt_outs_caused": 1}
        assert effect["response_rate"] == round(2 / 3, 4)
        assert isinstance(effect["cost_millis"], int)
        assert sum(h.get("delivered", 0) for h in effect["timeline"]) == 3
        assert (await http.post(f"/campaigns/{cid}/pause")).status_code == 200
        assert (await http.post(f"/campaigns/{cid}/close")).json()["status"] == "closed"
        assert (await http.post(f"/campaigns/{cid}/start")).status_code == 409


async def test_open_poll_keyword_then_a_bare_number_votes(gw: Gateway) -> None:
    """The demo poll as `smsgw phone` users try it: SAT, then 2 (the question says "reply
    with a number"). Found by hand: the bare number got ERR E01."""
    phone, other = PHONES[2], PHONES[3]
    question = await send(gw, phone, "SAT")
    assert "1=" in question and "2=" in question, question
    vote = await send(gw, phone, "2")
    assert not vote.startswith("ERR"), vote
    rows = await gw.store.read(lambda c: c.execute(sa.text(
        "SELECT choice FROM engagement_sessions WHERE phone = :p"), {"p": phone}).all())
    assert [r.choice for r in rows] == [2]
    # A phone that was never asked: a bare number is still not understood.
    assert (await send(gw, other, "2")).startswith("ERR E01")
