"""Fixtures for the domain/handler tests: a migrated database (SQLite and PostgreSQL via
db_url), one connection inside a transaction rolled back afterwards, and a small world of
products, accounts and topics built here (not from the demo data, which may change)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Connection

from commands import clock, pins
from commands.context import Context, Outcome
from commands.handlers import dispatch
from commands.parsed import Item, Parsed
from store.db import make_engine
from store.domain import accounts
from store.migrate import upgrade
from store.models import products, topics

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Monday 2025-01-06, 12:00 in Shanghai.
NOW = datetime(2025, 1, 6, 4, 0, tzinfo=UTC)

PH_MGR = "8613900000001"
PH_R1 = "8613800000001"  # retailer, SMS ordering, every day, all day, 1000.00
PH_R2 = "8613800000002"  # retailer, Tue/Fri 08:00-18:00, 50.00 + 10.00 credit
PH_R3 = "8613800000003"  # retailer without SMS ordering
PH_R5 = "8613800000005"  # retailer on another route
PH_S1 = "8613700000001"  # subscriber
PH_NEW = "8613600000009"  # nobody's
PIN = "123456"
WRONG = "000000"

ZH_KEYWORDS = {
    "REG": "注册", "PIN": "改密", "ORD": "订货", "MOD": "改单", "CAN": "撤单", "RPT": "重复",
    "OQ": "查单", "SAL": "销量", "STK": "库存", "SN": "串号", "BAL": "余额", "Q": "查询",
    "SUB": "订阅", "UNSUB": "退订", "CHG": "改号", "CFM": "确认",
}


@cache
def pin_hash(pin: str) -> str:
    return pins.hash_pin(pin)


@pytest.fixture(autouse=True)
def _service_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "SERVICE_TZ", SHANGHAI)


@pytest.fixture(params=["en", "zh"])
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def conn(db_url: str) -> Iterator[Connection]:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as c:
            tx = c.begin()
            try:
                yield c
            finally:
                tx.rollback()
    finally:
        engine.dispose()


def add_account(conn: Connection, account_no: str, role: str, phone: str | None, *,
                pin: str | None = PIN, **kw: Any) -> int:
    return accounts.create(conn, now=NOW, account_no=account_no, role=role,
                           name=kw.pop("name", f"Shop {account_no}"), phone=phone,
                           pin_hash=pin_hash(pin) if pin else None, **kw)


@pytest.fixture
def world(conn: Connection) -> dict[str, int]:
    conn.execute(products.insert(), [
        {"code": "1001", "name_zh": "中华", "name_en": "Zhonghua", "price_cents": 10000,
         "cost_cents": 8000, "max_qty": 10, "stock_qty": 500, "active": True},
        {"code": "1002", "name_zh": "玉溪", "name_en": "Yuxi", "price_cents": 2000,
         "cost_cents": 1500, "max_qty": 50, "stock_qty": 70, "active": True},
        {"code": "1099", "name_zh": "停售", "name_en": "Gone", "price_cents": 100,
         "cost_cents": 50, "max_qty": 5, "stock_qty": 0, "active": False},
    ])
    conn.execute(topics.insert(), [
        {"code": "OUTAGE", "name_zh": "停电通知", "name_en": "Power outage", "public": True,
         "active": True},
        {"code": "BILL", "name_zh": "账单提醒", "name_en": "Bill reminders", "public": False,
         "active": True},
        {"code": "OLD", "name_zh": "旧主题", "name_en": "Old", "public": True, "active": False},
    ])
    ids: dict[str, int] = {}
    ids["M1"] = add_account(conn, "M1", "manager", PH_MGR, route="RT1")
    ids["R1"] = add_account(conn, "R1", "retailer", PH_R1, route="RT1", manager_id=ids["M1"],
                            sms_ordering=True, balance_cents=100000)
    ids["R2"] = add_account(conn, "R2", "retailer", PH_R2, route="RT1", sms_ordering=True,
                            order_days="2,5", order_window_start="08:00",
                            order_window_end="18:00", balance_cents=5000, credit_cents=1000)
    ids["R3"] = add_account(conn, "R3", "retailer", PH_R3, route="RT1", sms_ordering=False)
    ids["R4"] = add_account(conn, "R4", "retailer", None, pin="654321", sms_ordering=True)
    ids["R5"] = add_account(conn, "R5", "retailer", PH_R5, route="RT2", sms_ordering=True,
                            balance_cents=100000)
    ids["S1"] = add_account(conn, "S1", "subscriber", PH_S1, balance_cents=12345,
                            last_bill_cents=8800, last_bill_due=date(2025, 1, 20))
    return ids


_AUTO = object()


def send(conn: Connection, sender: str, command: str, lang: str = "en", /, *,
         now: datetime = NOW, pin_ok: Any = _AUTO, **args: Any) -> Outcome:
    """Handle one command as the engine would: PIN precheck first, then dispatch."""
    if "items" in args:
        args["items"] = tuple(Item(c, q, i) for i, (c, q) in enumerate(args["items"], 1))
    keyword = ZH_KEYWORDS[command] if lang == "zh" else command
    parsed = Parsed(command, lang, keyword, args)
    rehash = None
    if pin_ok is _AUTO:
        check = pins.check(conn, sender, parsed)
        pin_ok, rehash = (check.ok, check.rehash) if check else (None, None)
    ctx = Context(conn=conn, phone=sender, now=now, today=now.astimezone(SHANGHAI).date(),
                  lang=lang, pin_ok=pin_ok, pin_rehash=rehash)
    return dispatch(ctx, parsed)


def assert_ok(out: Outcome, lang: str, *fragments: str) -> None:
    assert out.error is None, out.reply
    assert out.reply
    _assert_lang(out.reply, lang)
    for f in fragments:
        assert f in out.reply, (f, out.reply)


def assert_err(out: Outcome, code: str, lang: str, *fragments: str) -> None:
    assert out.error == code, out.reply
    assert out.reply is not None and out.reply.startswith(f"ERR {code} "), out.reply
    _assert_lang(out.reply, lang)
    assert ("查看格式" in out.reply) if lang == "zh" else out.reply.endswith("for format")
    for f in fragments:
        assert f in out.reply, (f, out.reply)


def _assert_lang(reply: str, lang: str) -> None:
    cjk = any("\u4e00" <= ch <= "\u9fff" for ch in reply)
    assert cjk == (lang == "zh"), reply
