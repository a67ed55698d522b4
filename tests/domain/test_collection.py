"""SAL STK SN."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from commands import engine
from commands.clock import local_today
from commands.context import Context, Outcome
from commands.handlers.collection import luhn_ok
from commands.rules import RuleSet
from store.domain import reports
from store.models import sales_reports, serial_events
from tests.domain.conftest import PH_MGR, PH_NEW, PH_R1, PH_S1, assert_err, assert_ok, send

DAY = date(2025, 1, 6)
IMEI = "490154203237518"  # a valid Luhn IMEI (the common documentation example)
IMEI2 = "356938035643809"


def test_luhn() -> None:
    assert luhn_ok(IMEI) and luhn_ok(IMEI2)
    assert not luhn_ok("490154203237517")


def test_sal_ok_and_resend_replaces(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_R1, "SAL", lang, date=DAY, items=[("1001", 2), ("1002", 3)])
    assert_ok(out, lang, "2025-01-06", "2", "5", "260.00")
    out = send(conn, PH_R1, "SAL", lang, date=DAY, items=[("1002", 1)])
    assert_ok(out, lang, "20.00")
    assert ("replaced" in out.reply) if lang == "en" else ("更新" in out.reply)
    assert reports.sales_lines_for(conn, world["R1"], DAY) == {"1002": 1}
    assert conn.execute(sa.select(sa.func.count()).select_from(sales_reports)).scalar() == 1


def test_sal_unknown_product_e06(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_R1, "SAL", lang, date=DAY, items=[("1001", 2), ("7777", 3)])
    assert_err(out, "E06", lang, "7777", "2")
    assert reports.sales_lines_for(conn, world["R1"], DAY) == {}


def test_sal_not_limited_by_max_qty(conn: Connection, world: dict) -> None:
    assert_ok(send(conn, PH_R1, "SAL", date=DAY, items=[("1001", 500)]), "en", "500")


def test_sal_e03(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_NEW, "SAL", lang, date=DAY, items=[("1001", 1)]), "E03", lang)
    assert_err(send(conn, PH_S1, "SAL", lang, date=DAY, items=[("1001", 1)]), "E03", lang)


def test_stk_ok_and_resend_replaces(conn: Connection, world: dict, lang: str) -> None:
    assert_ok(send(conn, PH_R1, "STK", lang, date=DAY, items=[("1001", 4), ("1002", 6)]),
              lang, "2025-01-06", "10")
    out = send(conn, PH_R1, "STK", lang, date=DAY, items=[("1001", 3)])
    assert_ok(out, lang, "3")
    assert reports.stock_lines_for(conn, world["R1"], DAY) == {"1001": 3}
    # Another date is another count.
    send(conn, PH_R1, "STK", lang, date=date(2025, 1, 5), items=[("1002", 9)])
    assert reports.stock_lines_for(conn, world["R1"], DAY) == {"1001": 3}


def test_stk_errors(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_R1, "STK", lang, date=DAY, items=[("1099", 1)]), "E06", lang,
               "1099")
    assert_err(send(conn, PH_MGR, "STK", lang, date=DAY, items=[("1001", 1)]), "E03", lang)


def test_sn_new_duplicate_and_invalid(conn: Connection, world: dict, lang: str) -> None:
    assert_ok(send(conn, PH_R1, "SN", lang, serials=(IMEI, "ABC123")), lang, "2", "0")
    out = send(conn, PH_R1, "SN", lang, serials=(IMEI, IMEI2))
    assert_ok(out, lang, "1")
    rows = conn.execute(
        sa.select(serial_events.c.serial, serial_events.c.duplicate, serial_events.c.is_imei)
        .order_by(serial_events.c.id)
    ).all()
    assert [tuple(r) for r in rows] == [
        (IMEI, False, True), ("ABC123", False, False), (IMEI, True, True), (IMEI2, False, True)]
    from store.domain import serials

    assert serials.count_sold(conn, world["R1"]) == 3


def test_sn_invalid_imei_e02(conn: Connection, world: dict, lang: str) -> None:
    bad = "490154203237517"
    out = send(conn, PH_R1, "SN", lang, serials=(IMEI, bad))
    assert_err(out, "E02", lang, bad, "1")
    # The valid one was recorded; the invalid one was not.
    assert conn.execute(sa.select(serial_events.c.serial)).scalars().all() == [IMEI]


def test_sn_e03(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_S1, "SN", lang, serials=(IMEI,)), "E03", lang)


def _text(conn: Connection, sender: str, text: str, now: datetime) -> Outcome:
    """One SMS text through the engine (parse, then handler), on a pinned service clock."""
    today = local_today(now)
    prepared = engine.prepare(text, today)
    ctx = Context(conn=conn, phone=sender, now=now, today=today, lang="en", pin_ok=None)
    return engine.process(ctx, prepared, RuleSet())


def _sales_days(conn: Connection) -> list[date]:
    day = sales_reports.c.report_date
    return list(conn.execute(sa.select(day).order_by(day)).scalars())


def test_report_dates_are_never_in_the_future_nor_too_old(conn: Connection,
                                                          world: dict) -> None:
    """Issue 8: `SAL 0115` on 2026-12-01 was stored for 2027-01-15, `SAL 20240115` taken."""
    now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    out = _text(conn, PH_R1, "SAL 0115 1001*2", now)
    assert_err(out, "E02", "en", "date 2026-01-15 is more than 31 days ago")
    out = _text(conn, PH_R1, "SAL 20240115 1001*2", now)
    assert_err(out, "E02", "en", "date 2024-01-15", "31 days")
    out = _text(conn, PH_R1, "STK 20261202 1001*2", now)
    assert_err(out, "E02", "en", "date 2026-12-02 is in the future")
    assert _sales_days(conn) == []
    assert_ok(_text(conn, PH_R1, "SAL 1201 1001*2", now), "en", "2026-12-01")
    assert_ok(_text(conn, PH_R1, "SAL 1031 1001*1", now), "en", "2026-10-31")  # 31 days
    assert _sales_days(conn) == [date(2026, 10, 31), date(2026, 12, 1)]
