"""One phone-number form end to end (issue 8, defect 4): CHG with a number written any way,
CFM from the handset, the account and its subscriptions on the new number; the simulator's
handsets and `smsgw phone` take any written form of a number.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from commands.demo import load_demo_data
from gateway.app import Gateway
from gateway.config import Settings
from gateway.phone import run_phone

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHORT = "10690"
SUBSCRIBER2 = "8613700000002"  # S3002, PIN 222222 (demo data)
NEW_PHONE = "8613600000099"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    db = Path(tmp_path_factory.mktemp("phones")) / "smsgw.db"
    gateway = Gateway(Settings(
        database_url=f"sqlite:///{db}", sim_port=0, sim_control_port=0, api_port=0,
        sim_receipt_delay=0.01, poll_interval=0.05, instance="e2e-phones",
        rate_limit_messages=1000, mo_redelivery_window=1.0))
    await gateway.start(api=False)
    await gateway.store.write(lambda c: load_demo_data(c, now=datetime.now(UTC)))
    await gateway.client.wait_bound()
    yield gateway
    await gateway.stop()


def control(gw: Gateway) -> httpx.AsyncClient:
    assert gw.simulator is not None
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.simulator.control_port}",
                             timeout=10)


async def send(gw: Gateway, phone: str, text: str) -> str:
    """Text the gateway from `phone`; return the reply that lands in its inbox."""
    before = len(gw.simulator.handset(phone).inbox)
    await gw.simulator.inject_mo(phone, SHORT, text)
    inbox = await gw.simulator.wait_for_inbox(phone, before + 1, timeout=10)
    return inbox[before].text


async def scalar(gw: Gateway, sql: str, *params: object) -> object:
    return await gw.store.read(lambda c: c.exec_driver_sql(sql, params).scalar())


async def test_chg_to_a_number_written_with_plus_and_dashes(gw: Gateway) -> None:
    # Before: the code went to handset "+8613600000099", CFM from 8613600000099 got E09, the
    # account was stored with '+', and subscriptions stayed on the old number.
    assert "OUTAGE" in await send(gw, SUBSCRIBER2, "SUB OUTAGE 8-20")
    reply = await send(gw, SUBSCRIBER2, "CHG 222222 +86 136-0000-0099")
    assert NEW_PHONE in reply and "+" not in reply, reply
    inbox = await gw.simulator.wait_for_inbox(NEW_PHONE, 1, timeout=10)
    code = re.search(r"\b(\d{6})\b", inbox[0].text)
    assert code, inbox[0].text
    assert gw.simulator.handset("+8613600000099") is gw.simulator.handset(NEW_PHONE)

    reply = await send(gw, NEW_PHONE, f"CFM {code.group(1)}")
    assert not reply.startswith("ERR"), reply
    assert await scalar(gw, "SELECT phone FROM accounts WHERE account_no = 'S3002'") == \
        NEW_PHONE
    assert await scalar(gw, "SELECT count(*) FROM accounts WHERE phone LIKE '+%'") == 0
    # The subscription (and its window) followed the person.
    assert await scalar(gw, "SELECT count(*) FROM subscriptions WHERE phone = ?",
                        SUBSCRIBER2) == 0
    assert await scalar(gw, "SELECT window_start FROM subscriptions WHERE phone = ?",
                        NEW_PHONE) == 8
    # The old number was told, and is no longer the account's.
    old_inbox = await gw.simulator.wait_for_inbox(SUBSCRIBER2, 3, timeout=10)
    assert any(NEW_PHONE in m.text for m in old_inbox[2:]), [m.text for m in old_inbox]
    assert (await send(gw, SUBSCRIBER2, "BAL")).startswith("ERR E03")

    # The account works from the new number, and from a handset that writes it another way.
    assert "Balance" in await send(gw, NEW_PHONE, "BAL")
    async with control(gw) as http:
        before = len(gw.simulator.handset(NEW_PHONE).inbox)
        # (余额, not BAL again: a repeated text within a minute is defect 1, fixed elsewhere.)
        resp = await http.post("/mo", json={"from": "+86 136-0000-0099", "text": "余额"})
        assert resp.status_code == 202 and resp.json()["from"] == NEW_PHONE
        inbox = await gw.simulator.wait_for_inbox("13600000099", before + 1, timeout=10)
        assert "-20.50" in inbox[before].text and "ERR" not in inbox[before].text


async def test_chg_to_junk_says_how_to_write_a_number(gw: Gateway) -> None:
    reply = await send(gw, "8613700000001", "CHG 111111 10086")
    assert reply.startswith("ERR E02") and "13800000001" in reply, reply


async def test_simulator_handset_is_one_whatever_its_form(gw: Gateway) -> None:
    sim = gw.simulator
    assert sim is not None
    same = {id(sim.handset(f)) for f in ("+86 138-0000-0001", "008613800000001",
                                         "8613800000001", "13800000001")}
    assert len(same) == 1
    assert sim.handset("10690").msisdn == "10690"  # a short code stays as written
    await send(gw, "8613800000001", "HELP")
    async with control(gw) as http:
        canonical = (await http.get("/handsets/8613800000001/inbox")).json()
        assert canonical
        for form in ("+86 138-0000-0001", "13800000001", "+8613800000001"):
            resp = await http.get(f"/handsets/{form}/inbox")
            assert resp.status_code == 200 and resp.json() == canonical, form


async def test_smsgw_phone_takes_any_written_form(gw: Gateway) -> None:
    assert gw.simulator is not None
    out, err = io.StringIO(), io.StringIO()
    rc = await run_phone("+86 138-0000-0002",
                         control_url=f"http://127.0.0.1:{gw.simulator.control_port}",
                         send="BAL", wait=10, count=1, stdout=out, stderr=err,
                         poll_interval=0.05)
    assert rc == 0, err.getvalue()
    replies = [x for x in out.getvalue().splitlines() if x.startswith("← ")]
    # Registered as 8613800000002 (R1002): a balance, not "not registered".
    assert len(replies) == 1 and "ERR" not in replies[0], out.getvalue()
    assert gw.simulator.handset("8613800000002").inbox


async def test_smsgw_phone_refuses_junk_with_the_reason() -> None:
    err = io.StringIO()
    assert await run_phone("12", send="HELP", stdout=io.StringIO(), stderr=err) == 2
    assert "too short" in err.getvalue() and "13800000001" in err.getvalue()
