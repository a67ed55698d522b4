"""Q SALES / STOCK / ROUTE, per roles.yaml."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Connection

from tests.domain.conftest import (
    PH_MGR,
    PH_R1,
    PH_R2,
    PH_R5,
    PH_S1,
    PIN,
    assert_err,
    assert_ok,
    send,
)

DAY = date(2025, 1, 6)


def _sales(conn: Connection) -> None:
    send(conn, PH_R1, "SAL", date=DAY, items=[("1001", 2)])  # 200.00, cost 160.00
    send(conn, PH_R2, "SAL", date=DAY, items=[("1002", 10)])  # 200.00, cost 150.00
    send(conn, PH_R5, "SAL", date=DAY, items=[("1001", 9)])  # other route
    send(conn, PH_R1, "SAL", date=date(2025, 1, 2), items=[("1002", 1)])  # earlier this month


def test_manager_sales_route_with_revenue_and_margin(conn: Connection, world: dict,
                                                     lang: str) -> None:
    _sales(conn)
    out = send(conn, PH_MGR, "Q", lang, what="SALES", period=None, code=None)
    # Route RT1 (R1, R2, R3 managed/on route): 12 units, revenue 400.00, margin 90.00.
    assert_ok(out, lang, "RT1", "2/3", "12", "400.00", "90.00", "22.5")
    out = send(conn, PH_MGR, "Q", lang, what="SALES", period="month", code=None)
    assert_ok(out, lang, "2025-01", "13", "420.00", "95.00")


def test_retailer_sales_own_only_no_margin(conn: Connection, world: dict, lang: str) -> None:
    _sales(conn)
    out = send(conn, PH_R1, "Q", lang, what="SALES", period="day", code=None)
    assert_ok(out, lang, "2", "200.00")
    assert "40.00" not in out.reply and "%" not in out.reply
    assert "400.00" not in out.reply


def test_q_stock(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_R1, "Q", lang, what="STOCK", period=None, code="1002")
    assert_ok(out, lang, "1002", "70")
    assert_ok(send(conn, PH_MGR, "Q", lang, what="STOCK", period=None, code="1001"), lang, "500")


def test_q_stock_errors(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_R1, "Q", lang, what="STOCK", period=None, code="5555")
    assert_err(out, "E06", lang, "5555")
    assert_err(send(conn, PH_R1, "Q", lang, what="STOCK", period=None, code=None), "E02", lang)


def test_q_route(conn: Connection, world: dict, lang: str) -> None:
    send(conn, PH_R1, "ORD", pin=PIN, items=[("1002", 1)])
    send(conn, PH_R1, "SAL", date=DAY, items=[("1002", 1)])
    out = send(conn, PH_MGR, "Q", lang, what="ROUTE", period=None, code=None)
    assert_ok(out, lang, "RT1", "3", "Shop R2(R2)", "Shop R3(R3)")
    assert "Shop R1(R1)" not in out.reply and "R5" not in out.reply


def test_q_not_allowed_e03(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_R1, "Q", lang, what="ROUTE", period=None, code=None)
    assert_err(out, "E03", lang, "ROUTE" if lang == "en" else "线路")
    assert_err(send(conn, PH_S1, "Q", lang, what="SALES", period=None, code=None), "E03", lang)
