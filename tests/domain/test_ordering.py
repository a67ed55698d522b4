"""ORD MOD CAN RPT OQ."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from commands import clock
from store.domain import orders
from store.models import products
from tests.domain.conftest import (
    NOW,
    PH_R1,
    PH_R2,
    PH_R3,
    PH_R5,
    PIN,
    SHANGHAI,
    WRONG,
    assert_err,
    assert_ok,
    send,
)

# Tuesday 2025-01-07 10:00 Shanghai: an order day and inside R2's 08:00-18:00 window.
TUE_10 = datetime(2025, 1, 7, 10, 0, tzinfo=SHANGHAI)


def _order_no(reply: str) -> int:
    import re

    return int(re.search(r"(?:Order |订单)(\d+)", reply).group(1))


# --- ORD -------------------------------------------------------------------------------------


def test_ord_ok(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_R1, "ORD", lang, pin=PIN, items=[("1001", 2), ("1002", 5)])
    name = "中华" if lang == "zh" else "Zhonghua"
    times = "x" if lang == "en" else "×"
    assert_ok(out, lang, f"{name}(1001){times}2", f"(1002){times}5", "300.00")
    order = orders.get(conn, _order_no(out.reply))
    assert order.status == "pending_review" and order.total_cents == 30000
    assert order.account_id == world["R1"]
    assert [(x.product_code, x.qty) for x in orders.lines(conn, order.id)] == [
        ("1001", 2), ("1002", 5)]
    assert [h.status for h in orders.history(conn, order.id)] == ["pending_review"]


def test_ord_repeated_code_adds_up(conn: Connection, world: dict) -> None:
    out = send(conn, PH_R1, "ORD", pin=PIN, items=[("1002", 2), ("1002", 3)])
    assert_ok(out, "en", "Yuxi(1002)x5", "100.00")


def test_ord_unknown_product_e06(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_R1, "ORD", lang, pin=PIN, items=[("1001", 1), ("9999", 1)])
    assert_err(out, "E06", lang, "9999", "2")
    assert orders.latest(conn, world["R1"]) is None


def test_ord_inactive_product_e06(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_R1, "ORD", lang, pin=PIN, items=[("1099", 1)]), "E06", lang,
               "1099")


def test_ord_above_max_e07(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_R1, "ORD", lang, pin=PIN, items=[("1002", 1), ("1001", 11)])
    name = "中华" if lang == "zh" else "Zhonghua"
    assert_err(out, "E07", lang, name, "1001", "10")


def test_ord_wrong_pin_e04(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_R1, "ORD", lang, pin=WRONG, items=[("1001", 1)]), "E04", lang)


def test_ord_locked_e05(conn: Connection, world: dict, lang: str) -> None:
    from store.domain import accounts

    accounts.lock_pin(conn, world["R1"], NOW + timedelta(minutes=5), now=NOW)
    assert_err(send(conn, PH_R1, "ORD", lang, pin=PIN, items=[("1001", 1)]), "E05", lang)


def test_ord_without_sms_ordering_e03(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_R3, "ORD", lang, pin=PIN, items=[("1001", 1)]), "E03", lang, "R3")


def test_ord_not_order_day_e08(conn: Connection, world: dict, lang: str) -> None:
    # NOW is Monday; R2 orders on Tuesday and Friday.
    out = send(conn, PH_R2, "ORD", lang, pin=PIN, items=[("1002", 1)])
    assert_err(out, "E08", lang, "Tue" if lang == "en" else "周二")
    assert orders.latest(conn, world["R2"]) is None


def test_ord_outside_window_e08(conn: Connection, world: dict, lang: str) -> None:
    late = TUE_10.replace(hour=18, minute=0)
    out = send(conn, PH_R2, "ORD", lang, now=late, pin=PIN, items=[("1002", 1)])
    assert_err(out, "E08", lang, "08:00", "18:00", "18:00")
    early = TUE_10.replace(hour=7, minute=59)
    assert send(conn, PH_R2, "ORD", lang, now=early, pin=PIN, items=[("1002", 1)]).error == "E08"
    assert_ok(send(conn, PH_R2, "ORD", lang, now=TUE_10, pin=PIN, items=[("1002", 1)]), lang)


def test_window_uses_service_time_zone(conn: Connection, world: dict, monkeypatch) -> None:
    from zoneinfo import ZoneInfo

    # 2025-01-07 10:00 Shanghai is 2025-01-07 02:00 UTC: Tuesday 02:00 in UTC -> outside.
    monkeypatch.setattr(clock, "SERVICE_TZ", ZoneInfo("UTC"))
    assert send(conn, PH_R2, "ORD", now=TUE_10, pin=PIN, items=[("1002", 1)]).error == "E08"


def test_ord_insufficient_funds_e10(conn: Connection, world: dict, lang: str) -> None:
    # R2: 50.00 balance + 10.00 credit; 4 x 20.00 = 80.00.
    out = send(conn, PH_R2, "ORD", lang, now=TUE_10, pin=PIN, items=[("1002", 4)])
    assert_err(out, "E10", lang, "80.00", "60.00")
    order = orders.latest(conn, world["R2"])
    assert order.status == "pending_funds" and order.total_cents == 8000
    assert str(order.id) in out.reply


def test_ord_credit_counts_towards_funds(conn: Connection, world: dict) -> None:
    out = send(conn, PH_R2, "ORD", now=TUE_10, pin=PIN, items=[("1002", 3)])  # 60.00
    assert_ok(out, "en", "60.00")


# --- MOD -------------------------------------------------------------------------------------


def _place(conn: Connection, phone: str = PH_R1, **kw) -> int:
    out = send(conn, phone, "ORD", pin=PIN, items=kw.pop("items", [("1001", 2), ("1002", 5)]),
               **kw)
    assert out.error in (None, "E10"), out.reply
    return _order_no(out.reply)


def test_mod_changes_and_removes(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn)
    out = send(conn, PH_R1, "MOD", lang, pin=PIN, order=str(n),
               items=[("1001", 0), ("1002", 7)])
    assert_ok(out, lang, str(n), "(1002)x7" if lang == "en" else "(1002)×7", "140.00")
    assert "1001" not in out.reply
    assert orders.get(conn, n).total_cents == 14000
    assert [(x.product_code, x.qty) for x in orders.lines(conn, n)] == [("1002", 7)]


def test_mod_removing_every_line_cancels(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn, items=[("1002", 1)])
    assert_ok(send(conn, PH_R1, "MOD", lang, pin=PIN, order=str(n), items=[("1002", 0)]), lang)
    assert orders.get(conn, n).status == "cancelled"


def test_mod_not_found_e09(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_R1, "MOD", lang, pin=PIN, order="999", items=[("1002", 1)])
    assert_err(out, "E09", lang, "999")


def test_mod_other_retailers_order_e09(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn, PH_R5)
    out = send(conn, PH_R1, "MOD", lang, pin=PIN, order=str(n), items=[("1002", 1)])
    assert_err(out, "E09", lang, str(n))


def test_mod_reviewed_order_e09(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn)
    orders.set_status(conn, n, "approved", now=NOW)
    out = send(conn, PH_R1, "MOD", lang, pin=PIN, order=str(n), items=[("1002", 1)])
    assert_err(out, "E09", lang, str(n))


def test_mod_unknown_product_e06(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn)
    out = send(conn, PH_R1, "MOD", lang, pin=PIN, order=str(n), items=[("8888", 1)])
    assert_err(out, "E06", lang, "8888")


def test_mod_above_max_e07(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn)
    out = send(conn, PH_R1, "MOD", lang, pin=PIN, order=str(n), items=[("1001", 20)])
    assert_err(out, "E07", lang, "1001")
    assert orders.get(conn, n).total_cents == 30000


def test_mod_insufficient_funds_e10(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn, PH_R2, now=TUE_10, items=[("1002", 1)])
    out = send(conn, PH_R2, "MOD", lang, now=TUE_10, pin=PIN, order=str(n),
               items=[("1002", 10)])
    assert_err(out, "E10", lang, "200.00")
    assert orders.get(conn, n).status == "pending_funds"
    # Back under the limit: pending review again.
    out = send(conn, PH_R2, "MOD", lang, now=TUE_10, pin=PIN, order=str(n),
               items=[("1002", 2)])
    assert_ok(out, lang)
    assert orders.get(conn, n).status == "pending_review"


def test_mod_wrong_pin_e04(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn)
    out = send(conn, PH_R1, "MOD", lang, pin=WRONG, order=str(n), items=[("1002", 1)])
    assert_err(out, "E04", lang)


def test_mod_locked_e05_and_no_sms_ordering_e03(conn: Connection, world: dict,
                                                lang: str) -> None:
    from store.domain import accounts

    accounts.lock_pin(conn, world["R1"], NOW + timedelta(minutes=5), now=NOW)
    out = send(conn, PH_R1, "MOD", lang, pin=PIN, order="1", items=[("1002", 1)])
    assert_err(out, "E05", lang)
    out = send(conn, PH_R3, "MOD", lang, pin=PIN, order="1", items=[("1002", 1)])
    assert_err(out, "E03", lang)


def test_mod_outside_window_e08(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn, PH_R2, now=TUE_10, items=[("1002", 1)])
    out = send(conn, PH_R2, "MOD", lang, pin=PIN, order=str(n), items=[("1002", 2)])
    assert_err(out, "E08", lang)


# --- CAN -------------------------------------------------------------------------------------


def test_can_ok(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn)
    assert_ok(send(conn, PH_R1, "CAN", lang, pin=PIN, order=str(n)), lang, str(n))
    assert orders.get(conn, n).status == "cancelled"
    # Cancelled is final.
    assert_err(send(conn, PH_R1, "CAN", lang, pin=PIN, order=str(n)), "E09", lang)


def test_can_allowed_outside_window(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn, PH_R2, now=TUE_10, items=[("1002", 1)])
    assert_ok(send(conn, PH_R2, "CAN", lang, pin=PIN, order=str(n)), lang)


def test_can_errors(conn: Connection, world: dict, lang: str) -> None:
    n = _place(conn)
    assert_err(send(conn, PH_R1, "CAN", lang, pin=PIN, order="abc"), "E09", lang, "abc")
    assert_err(send(conn, PH_R5, "CAN", lang, pin=PIN, order=str(n)), "E09", lang)
    assert_err(send(conn, PH_R1, "CAN", lang, pin=WRONG, order=str(n)), "E04", lang)
    assert_err(send(conn, PH_R3, "CAN", lang, pin=PIN, order=str(n)), "E03", lang)
    assert orders.get(conn, n).status == "pending_review"


# --- RPT -------------------------------------------------------------------------------------


def test_rpt_then_mod(conn: Connection, world: dict, lang: str) -> None:
    first = _place(conn)
    conn.execute(products.update().where(products.c.code == "1002").values(price_cents=2500))
    out = send(conn, PH_R1, "RPT", lang, pin=PIN)
    assert_ok(out, lang, str(first), "325.00")  # 2 x 100.00 + 5 x 25.00 (today's price)
    second = _order_no(out.reply)
    assert second != first
    assert [(x.product_code, x.qty) for x in orders.lines(conn, second)] == [
        ("1001", 2), ("1002", 5)]
    out = send(conn, PH_R1, "MOD", lang, pin=PIN, order=str(second), items=[("1001", 0)])
    assert_ok(out, lang, "125.00")
    assert orders.get(conn, first).total_cents == 30000  # the original is untouched


def test_rpt_skips_cancelled(conn: Connection, world: dict) -> None:
    first = _place(conn, items=[("1002", 1)])
    second = _place(conn, items=[("1001", 1)])
    send(conn, PH_R1, "CAN", pin=PIN, order=str(second))
    out = send(conn, PH_R1, "RPT", pin=PIN)
    assert_ok(out, "en", f"repeat of {first}", "Yuxi(1002)x1")


def test_rpt_no_previous_e09(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_R1, "RPT", lang, pin=PIN), "E09", lang)


def test_rpt_product_gone_e06(conn: Connection, world: dict, lang: str) -> None:
    _place(conn)
    conn.execute(products.update().where(products.c.code == "1002").values(active=False))
    assert_err(send(conn, PH_R1, "RPT", lang, pin=PIN), "E06", lang, "1002")


def test_rpt_max_lowered_e07(conn: Connection, world: dict, lang: str) -> None:
    _place(conn)
    conn.execute(products.update().where(products.c.code == "1001").values(max_qty=1))
    assert_err(send(conn, PH_R1, "RPT", lang, pin=PIN), "E07", lang, "1001")


def test_rpt_insufficient_funds_e10(conn: Connection, world: dict, lang: str) -> None:
    _place(conn, PH_R2, now=TUE_10, items=[("1002", 3)])  # 60.00: exactly affordable
    conn.execute(products.update().where(products.c.code == "1002").values(price_cents=3000))
    out = send(conn, PH_R2, "RPT", lang, now=TUE_10, pin=PIN)
    assert_err(out, "E10", lang, "90.00")
    assert orders.latest(conn, world["R2"]).status == "pending_funds"


def test_rpt_gate_errors(conn: Connection, world: dict, lang: str) -> None:
    _place(conn, PH_R2, now=TUE_10, items=[("1002", 1)])
    assert_err(send(conn, PH_R2, "RPT", lang, pin=PIN), "E08", lang)  # Monday
    assert_err(send(conn, PH_R2, "RPT", lang, now=TUE_10, pin=WRONG), "E04", lang)
    assert_err(send(conn, PH_R3, "RPT", lang, pin=PIN), "E03", lang)


def test_rpt_locked_e05(conn: Connection, world: dict, lang: str) -> None:
    from store.domain import accounts

    accounts.lock_pin(conn, world["R1"], NOW + timedelta(minutes=5), now=NOW)
    assert_err(send(conn, PH_R1, "RPT", lang, pin=PIN), "E05", lang)


# --- OQ --------------------------------------------------------------------------------------


def test_oq_latest_and_given(conn: Connection, world: dict, lang: str) -> None:
    first = _place(conn)
    second = _place(conn, items=[("1002", 1)])
    out = send(conn, PH_R1, "OQ", lang, order=None)
    assert_ok(out, lang, str(second), "2025-01-06", "20.00",
              "awaiting review" if lang == "en" else "待审核")
    orders.set_status(conn, first, "rejected", now=NOW, reject_reason="over quota")
    out = send(conn, PH_R1, "OQ", lang, order=str(first))
    assert_ok(out, lang, str(first), "over quota", "300.00")


def test_oq_errors_e09_e03(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_R1, "OQ", lang, order=None), "E09", lang)
    n = _place(conn, PH_R5)
    assert_err(send(conn, PH_R1, "OQ", lang, order=str(n)), "E09", lang, str(n))
    from tests.domain.conftest import PH_S1

    assert_err(send(conn, PH_S1, "OQ", lang, order=None), "E03", lang)


def test_order_statuses_are_checked(conn: Connection, world: dict) -> None:
    n = _place(conn)
    status = conn.execute(sa.text("SELECT status FROM orders WHERE id = :i"), {"i": n}).scalar()
    assert status == "pending_review"
