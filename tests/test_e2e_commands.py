"""Every command of protocol.md end to end: handset → simulator → gateway → store → reply.

One gateway with the demo data serves the whole module (each scenario uses its own phones).
The handlers' every failure code is covered on SQLite and PostgreSQL in tests/domain; here
each command's success and its main failures travel the real path, in English and Chinese,
and the store is checked for the effect.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from commands.demo import load_demo_data
from gateway.app import Gateway
from gateway.config import Settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHORT = "10690"
RETAILER = "8613800000001"  # R1001, PIN 123456, SMS ordering on, balance 5000.00
RETAILER2 = "8613800000002"  # R1002, PIN 123456, orders Mondays and Thursdays 08-18
RETAILER3 = "8613800000003"  # R1003, PIN 123456, SMS ordering not enabled
MANAGER = "8613900000001"  # M2001, PIN 888888
SUBSCRIBER = "8613700000001"  # S3001
SUBSCRIBER2 = "8613700000002"  # S3002


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    db = Path(tmp_path_factory.mktemp("cmd")) / "smsgw.db"
    gateway = Gateway(Settings(
        database_url=f"sqlite:///{db}", sim_port=0, sim_control_port=0, api_port=0,
        sim_receipt_delay=0.01, poll_interval=0.05, instance="e2e-commands",
        # The SMSC's response timeout, short: an identical text a second later is the
        # person's new message (the redelivery test drops the session to lose its ack).
        rate_limit_messages=1000, smsc_response_timeout=1.0))
    await gateway.start(api=False)
    await gateway.store.write(lambda c: load_demo_data(c, now=datetime.now(UTC)))
    await gateway.client.wait_bound()
    yield gateway
    await gateway.stop()


async def send(gw: Gateway, phone: str, text: str) -> str:
    """Text the gateway from `phone`; return the reply that lands in its inbox."""
    before = len(gw.simulator.handset(phone).inbox)
    await gw.simulator.inject_mo(phone, SHORT, text)
    inbox = await gw.simulator.wait_for_inbox(phone, before + 1, timeout=10)
    return inbox[before].text


async def scalar(gw: Gateway, sql: str, *params: object) -> object:
    return await gw.store.read(lambda c: c.exec_driver_sql(sql, params).scalar())


def order_no(reply: str) -> str:
    m = re.search(r"(?:Order |订单)(\d+)", reply)
    assert m, reply
    return m.group(1)


async def test_help_and_unknown(gw: Gateway) -> None:
    assert (await send(gw, RETAILER, "HELP")).startswith("Commands:")
    assert "ORD" in await send(gw, RETAILER, "HELP ORD")
    assert "订货" in await send(gw, RETAILER, "帮助 订货")
    reply = await send(gw, RETAILER, "XYZZY 1")
    assert reply.startswith("ERR E01") and "XYZZY" in reply


async def test_order_lifecycle_english(gw: Gateway) -> None:
    reply = await send(gw, RETAILER, "ORD 123456 1001*5 1002*2")
    assert "Zhonghua" in reply and "2710.00" in reply, reply
    first = order_no(reply)
    assert await scalar(gw, "SELECT status FROM orders WHERE id = ?", first) == \
        "pending_review"
    assert "awaiting review" in await send(gw, RETAILER, f"OQ {first}")
    reply = await send(gw, RETAILER, f"MOD 123456 {first} 1001*0 1003*1")
    assert "Hongtashan" in reply and "Zhonghua" not in reply, reply
    lines = await scalar(gw, "SELECT count(*) FROM order_lines WHERE order_id = ?", first)
    assert lines == 2
    # RPT places the previous order again; then CAN cancels it.
    reply = await send(gw, RETAILER, "RPT 123456")
    again = order_no(reply)
    assert again != first and "Hongtashan" in reply
    assert "cancelled" in await send(gw, RETAILER, f"CAN 123456 {again}")
    assert await scalar(gw, "SELECT status FROM orders WHERE id = ?", again) == "cancelled"
    # A cancelled order can no longer be changed.
    assert (await send(gw, RETAILER, f"MOD 123456 {again} 1001*1")).startswith("ERR E09")


async def test_order_chinese_no_separator(gw: Gateway) -> None:
    reply = await send(gw, RETAILER, "订货123456 1001*1")
    assert reply.startswith("订单") and "中华" in reply, reply
    assert "待审核" in await send(gw, RETAILER, "查单")
    number = order_no(reply)
    assert "撤" in await send(gw, RETAILER, f"撤单 123456 {number}")


async def test_ordering_window_and_order_days(gw: Gateway) -> None:
    from commands.clock import local

    now = local(datetime.now(UTC))
    reply = await send(gw, RETAILER2, "ORD 123456 1001*1")
    order_day = now.isoweekday() in (1, 4) and 8 <= now.hour < 18
    if order_day:
        assert reply.startswith("Order"), reply
    else:
        assert reply.startswith("ERR E08"), reply
    assert (await send(gw, RETAILER3, "ORD 123456 1001*1")).startswith("ERR E03")


async def test_order_failures(gw: Gateway) -> None:
    assert (await send(gw, RETAILER, "ORD 123456 9999*1")).startswith("ERR E06")
    reply = await send(gw, RETAILER, "ORD 123456 1001*500")
    assert reply.startswith("ERR E07") and "1001" in reply
    assert (await send(gw, RETAILER, "ORD 123456 10x1")).startswith("ERR E02")
    # Insufficient funds: the order is kept as pending_funds.
    reply = await send(gw, RETAILER, "ORD 123456 1001*10 1004*10")  # 7000.00 > 5000.00
    assert reply.startswith("ERR E10"), reply
    status = await scalar(gw, "SELECT status FROM orders o JOIN accounts a ON a.id ="
                          " o.account_id WHERE a.phone = ? ORDER BY o.id DESC", RETAILER)
    assert status == "pending_funds"
    assert (await send(gw, SUBSCRIBER, "ORD 123456 1001*1")).startswith("ERR E03")
    assert (await send(gw, "8613500000099", "ORD 123456 1001*1")).startswith("ERR E03")


async def test_sales_and_stock_collection(gw: Gateway) -> None:
    reply = await send(gw, RETAILER2, "SAL 1001*3 1002*4")
    assert "7" in reply, reply
    # A resend for the same date replaces the first report.
    reply = await send(gw, RETAILER2, "销量 1001*1")
    assert "销量" in reply
    units = await scalar(gw, "SELECT sum(l.qty) FROM sales_lines l JOIN sales_reports r ON"
                         " r.id = l.report_id JOIN accounts a ON a.id = r.account_id"
                         " WHERE a.phone = ?", RETAILER2)
    assert units == 1
    assert "30" in await send(gw, RETAILER2, "STK 1001*30")
    assert (await send(gw, RETAILER2, "STK 1001")).startswith("ERR E02")


async def test_serial_numbers(gw: Gateway) -> None:
    reply = await send(gw, RETAILER2, "SN 490154203237518 SER0001")
    assert "2 new, 0 already reported" in reply, reply
    reply = await send(gw, RETAILER2, "串号 490154203237518")
    assert "新增0个，重复1个" in reply, reply  # already reported: flagged, not counted twice
    dupes = await scalar(gw, "SELECT count(*) FROM serial_events WHERE duplicate = 1")
    assert dupes == 1
    assert (await send(gw, RETAILER2, "SN 490154203237519")).startswith("ERR E02")


async def test_balance_and_queries(gw: Gateway) -> None:
    reply = await send(gw, SUBSCRIBER2, "BAL")
    assert reply.startswith("Balance -20.50") and "due" in reply, reply
    assert "余额" in await send(gw, SUBSCRIBER, "余额")
    reply = await send(gw, MANAGER, "Q SALES month")
    assert "margin" in reply, reply
    assert "KM-01" in await send(gw, MANAGER, "Q ROUTE")
    assert "company stock 800" in await send(gw, MANAGER, "Q STOCK 1001")
    assert (await send(gw, SUBSCRIBER, "Q ROUTE")).startswith("ERR E03")


async def test_subscriptions(gw: Gateway) -> None:
    reply = await send(gw, SUBSCRIBER2, "SUB OUTAGE 8-20")
    assert "OUTAGE" in reply and "08:00-20:00" in reply
    assert await scalar(gw, "SELECT count(*) FROM subscriptions WHERE phone = ?",
                        SUBSCRIBER2) == 1
    assert (await send(gw, SUBSCRIBER2, "SUB NOPE")).startswith("ERR E11")
    assert "OUTAGE" in await send(gw, SUBSCRIBER2, "UNSUB OUTAGE")
    await send(gw, SUBSCRIBER2, "订阅 PROMO")
    reply = await send(gw, SUBSCRIBER2, "STOP")
    assert await scalar(gw, "SELECT count(*) FROM subscriptions WHERE phone = ?",
                        SUBSCRIBER2) == 0
    assert await scalar(gw, "SELECT count(*) FROM opt_outs WHERE phone = ?", SUBSCRIBER2) == 1
    assert reply
    # STOP works for anybody, registered or not.
    assert await send(gw, "8613500000077", "退订")


async def test_register_change_pin_and_phone(gw: Gateway) -> None:
    newcomer = "8613600000009"
    assert (await send(gw, newcomer, "REG R1004 000000")).startswith("ERR E04")
    assert "R1004" in await send(gw, newcomer, "REG R1004 654321")
    assert await scalar(gw, "SELECT phone FROM accounts WHERE account_no = 'R1004'") == newcomer
    assert await send(gw, newcomer, "PIN 654321 246810") == "PIN changed."
    assert (await send(gw, newcomer, "ORD 654321 1001*1")).startswith("ERR E04")
    # CHG: the new number gets a code and confirms it with CFM.
    new_phone = "8613600000010"
    await send(gw, newcomer, f"CHG 246810 {new_phone}")
    inbox = await gw.simulator.wait_for_inbox(new_phone, 1, timeout=10)
    code = re.search(r"\b(\d{6})\b", inbox[0].text)
    assert code, inbox[0].text
    assert (await send(gw, new_phone, "CFM 000000")).startswith("ERR E09")
    await send(gw, new_phone, f"CFM {code.group(1)}")
    assert await scalar(gw, "SELECT phone FROM accounts WHERE account_no = 'R1004'") == \
        new_phone


async def test_fullwidth_and_mixed_separators(gw: Gateway) -> None:
    reply = await send(gw, RETAILER, "ＯＲＤ　１２３４５６，１００５＊２、１００６×１")
    assert "1005" in reply and "1006" in reply, reply


async def test_long_concatenated_mo_is_reassembled(gw: Gateway) -> None:
    # A 40-line order is longer than one SMS: the handset splits it, the gateway joins it.
    items = " ".join(f"{code}*1" for code in ("1001", "1002", "1003", "1004", "1005",
                                               "1006", "1007", "1008", "2001", "2002"))
    text = f"ORD 123456 {items} " + "   " * 40
    assert len(text) > 160
    reply = await send(gw, RETAILER, text)
    assert "Order" in reply and "2002" in reply, reply


async def test_redelivered_order_is_processed_once(gw: Gateway) -> None:
    """The session drops right after our ack (it may be lost): the SMSC redelivers, twice.
    One order; each redelivery gets the same answer again (a replay), never a new order."""
    before = await scalar(gw, "SELECT count(*) FROM orders")
    replies = len(gw.simulator.handset(RETAILER).inbox)
    ids = await gw.simulator.inject_mo(RETAILER, SHORT, "ORD 123456 1003*2")
    await gw.simulator.wait_delivered(ids)
    gw.simulator.drop_connections()
    inbox = await gw.simulator.wait_for_inbox(RETAILER, replies + 1, timeout=10)
    await gw.simulator.redeliver(ids[0], timeout=10)
    await gw.simulator.redeliver(ids[0], timeout=10)
    inbox = await gw.simulator.wait_for_inbox(RETAILER, replies + 3, timeout=10)
    assert inbox[replies].text.startswith("Order")
    assert [m.text for m in inbox[replies + 1:]] == [inbox[replies].text] * 2
    assert await scalar(gw, "SELECT count(*) FROM orders") == before + 1
    assert await scalar(gw, "SELECT count(*) FROM inbound_messages WHERE disposition ="
                        " 'replayed_duplicate'") == 2


async def test_wrong_pin_locks_after_five(gw: Gateway) -> None:
    phone = RETAILER2  # the PIN is checked before the order day (last test: it stays locked)
    # Different wrong PINs: an identical text within the redelivery window would count as
    # the SMSC redelivering it.
    for attempt in range(4):
        reply = await send(gw, phone, f"ORD 00000{attempt} 1001*1")
        assert reply.startswith("ERR E04"), reply
    assert (await send(gw, phone, "ORD 000009 1001*1")).startswith("ERR E05")
    # Locked: even the right PIN is refused, and the phone is told so (the same E05 text as
    # a moment ago, but the answer to a different message: the storm guard lets it go).
    # (1001*2: this phone sent `ORD 123456 1001*1` in an earlier test, maybe less than the
    # SMSC response timeout ago, which would make this its redelivery, not a new message.)
    orders = await scalar(gw, "SELECT count(*) FROM orders")
    assert (await send(gw, phone, "ORD 123456 1001*2")).startswith("ERR E05")
    assert await scalar(gw, "SELECT count(*) FROM orders") == orders
