"""Fixtures for the notice tests: the service clock pinned to Shanghai, a rolled-back
connection on SQLite and PostgreSQL (db_url), and a small world of accounts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from commands import clock
from gateway.notices.config import load_config
from gateway.notices.events import NoticeContext
from store.db import make_engine
from store.domain import accounts
from store.migrate import upgrade
from store.models import outbound_messages, topics
from store.notices import NoticePolicy

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Monday 2025-01-06 12:00 in Shanghai.
NOW = datetime(2025, 1, 6, 4, 0, tzinfo=UTC)

PH_MGR = "8613900000001"  # manager, en
PH_MGR_ZH = "8613900000002"  # manager, zh
PH_R1 = "8613800000001"  # retailer en, manager M1, orders Mon/Thu
PH_R2 = "8613800000002"  # retailer zh, manager M2, orders Mon
PH_R3 = "8613800000003"  # retailer en, no order days, other region
PH_S1 = "8613700000001"  # subscriber zh


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    """An aware UTC datetime for a Shanghai wall-clock time."""
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture(autouse=True)
def _service_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "SERVICE_TZ", SHANGHAI)


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


@pytest.fixture
def ctx() -> NoticeContext:
    return NoticeContext(load_config(), NoticePolicy(source_addr="10690"))


def add_account(conn: Connection, account_no: str, role: str, phone: str | None,
                **kw: Any) -> int:
    return accounts.create(conn, now=NOW, account_no=account_no, role=role,
                           name=kw.pop("name", f"Shop {account_no}"), phone=phone, **kw)


def build_world(conn: Connection) -> dict[str, int]:
    conn.execute(topics.insert(), [
        {"code": "OUTAGE", "name_zh": "停电通知", "name_en": "Power outage", "public": True,
         "active": True},
        {"code": "DIGEST_SALES", "name_zh": "日销量", "name_en": "Daily sales",
         "public": False, "active": True},
        {"code": "DIGEST_COLLECTION", "name_zh": "周采集", "name_en": "Weekly collection",
         "public": False, "active": True},
    ])
    ids: dict[str, int] = {}
    ids["M1"] = add_account(conn, "M1", "manager", PH_MGR, lang="en", route="RT1")
    ids["M2"] = add_account(conn, "M2", "manager", PH_MGR_ZH, lang="zh", route="RT2")
    ids["R1"] = add_account(conn, "R1", "retailer", PH_R1, lang="en", route="RT1",
                            region="north", value_band="A", manager_id=ids["M1"],
                            sms_ordering=True, order_days="1,4", order_window_start="08:00",
                            order_window_end="18:00", balance_cents=150000,
                            credit_cents=5000, last_bill_cents=8800,
                            last_bill_due=date(2025, 1, 9))
    ids["R2"] = add_account(conn, "R2", "retailer", PH_R2, lang="zh", route="RT2",
                            region="north", value_band="B", manager_id=ids["M2"],
                            sms_ordering=True, order_days="1", balance_cents=-2000)
    ids["R3"] = add_account(conn, "R3", "retailer", PH_R3, lang="en", route="RT1",
                            region="south", value_band="A", manager_id=ids["M1"],
                            sms_ordering=True)
    ids["R4"] = add_account(conn, "R4", "retailer", None, lang="en", region="north",
                            value_band="A")  # no phone yet
    ids["S1"] = add_account(conn, "S1", "subscriber", PH_S1, lang="zh", region="north")
    return ids


@pytest.fixture
def world(conn: Connection) -> dict[str, int]:
    return build_world(conn)


def queued(conn: Connection, *, since_id: int = 0) -> list[Any]:
    om = outbound_messages
    return conn.execute(sa.select(om).where(om.c.id > since_id).order_by(om.c.id)).all()


def max_mt(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(outbound_messages.c.id),
                                                       0))).scalar_one())
