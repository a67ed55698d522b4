"""REG PIN CHG CFM BAL, the PIN lockout and the registration/role gate."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from commands import pins
from store.domain import accounts
from store.models import PRIORITY_ALERT, phone_changes
from tests.domain.conftest import (
    NOW,
    PH_MGR,
    PH_NEW,
    PH_R1,
    PH_R3,
    PH_S1,
    PIN,
    WRONG,
    assert_err,
    assert_ok,
    send,
)

# --- gate ------------------------------------------------------------------------------------


def test_unregistered_sender_gets_e03(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_NEW, "BAL", lang)
    assert_err(out, "E03", lang, "REG" if lang == "en" else "注册")


def test_subscriber_cannot_order(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_S1, "ORD", lang, pin=PIN, items=[("1001", 1)])
    assert_err(out, "E03", lang, "ORD" if lang == "en" else "订货")


def test_manager_cannot_report_sales(conn: Connection, world: dict, lang: str) -> None:
    from datetime import date

    out = send(conn, PH_MGR, "SAL", lang, date=date(2025, 1, 6), items=[("1001", 1)])
    assert_err(out, "E03", lang, "SAL" if lang == "en" else "销量")


# --- REG -------------------------------------------------------------------------------------


def test_reg_binds_phone(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_NEW, "REG", lang, account="r4", pin="654321")
    assert_ok(out, lang, "R4")
    assert accounts.by_phone(conn, PH_NEW).account_no == "R4"
    # Registered now: BAL works.
    assert_ok(send(conn, PH_NEW, "BAL", lang), lang)


def test_reg_unknown_account_e03(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_NEW, "REG", lang, account="R999", pin=PIN), "E03", lang, "R999")


def test_reg_account_bound_to_other_phone_e03(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_NEW, "REG", lang, account="R1", pin=PIN), "E03", lang, "R1")


def test_reg_phone_already_bound_e03(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_R1, "REG", lang, account="R4", pin="654321")
    assert_err(out, "E03", lang, "R1")
    assert accounts.by_account_no(conn, "R4").phone is None


def test_reg_wrong_pin_e04(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_NEW, "REG", lang, account="R4", pin=WRONG)
    assert_err(out, "E04", lang, "4")
    assert accounts.by_account_no(conn, "R4").phone is None


def test_reg_locked_e05(conn: Connection, world: dict, lang: str) -> None:
    for _ in range(4):
        assert send(conn, PH_NEW, "REG", lang, account="R4", pin=WRONG).error == "E04"
    assert_err(send(conn, PH_NEW, "REG", lang, account="R4", pin=WRONG), "E05", lang)
    assert_err(send(conn, PH_NEW, "REG", lang, account="R4", pin="654321"), "E05", lang)


# --- PIN lockout -----------------------------------------------------------------------------


def test_lockout_after_five_wrong_then_unlocked(conn: Connection, world: dict,
                                                lang: str) -> None:
    for i in range(4):
        out = send(conn, PH_R1, "CAN", lang, now=NOW + timedelta(minutes=i), pin=WRONG,
                   order="1")
        assert_err(out, "E04", lang, str(4 - i))
    out = send(conn, PH_R1, "CAN", lang, now=NOW + timedelta(minutes=5), pin=WRONG, order="1")
    assert_err(out, "E05", lang, "12:35")  # locked until 12:35 Shanghai time
    # While locked even the right PIN gets E05.
    out = send(conn, PH_R1, "ORD", lang, now=NOW + timedelta(minutes=34), pin=PIN,
               items=[("1001", 1)])
    assert_err(out, "E05", lang)
    # 30 minutes after the lock: the right PIN works again.
    out = send(conn, PH_R1, "ORD", lang, now=NOW + timedelta(minutes=35), pin=PIN,
               items=[("1001", 1)])
    assert_ok(out, lang)


def test_failures_older_than_30_min_do_not_count(conn: Connection, world: dict) -> None:
    for i in range(4):
        send(conn, PH_R1, "RPT", now=NOW + timedelta(minutes=i), pin=WRONG)
    out = send(conn, PH_R1, "RPT", now=NOW + timedelta(minutes=31), pin=WRONG)
    assert out.error == "E04"


def test_right_pin_resets_failures(conn: Connection, world: dict) -> None:
    for _ in range(4):
        send(conn, PH_R1, "CAN", pin=WRONG, order="1")
    send(conn, PH_R1, "ORD", pin=PIN, items=[("1002", 1)])
    assert send(conn, PH_R1, "CAN", pin=WRONG, order="1").error == "E04"


# --- PIN -------------------------------------------------------------------------------------


def test_pin_change(conn: Connection, world: dict, lang: str) -> None:
    assert_ok(send(conn, PH_R1, "PIN", lang, old=PIN, new="246810"), lang)
    stored = accounts.pin_hash_for_phone(conn, PH_R1)
    assert pins.verify_pin("246810", stored) and "246810" not in stored
    assert send(conn, PH_R1, "PIN", lang, old=PIN, new="111111").error == "E04"


def test_pin_wrong_old_e04(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_S1, "PIN", lang, old=WRONG, new="246810"), "E04", lang)


def test_pin_same_e02(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_S1, "PIN", lang, old=PIN, new=PIN), "E02", lang)


def test_pin_locked_e05(conn: Connection, world: dict, lang: str) -> None:
    accounts.lock_pin(conn, world["S1"], NOW + timedelta(minutes=10), now=NOW)
    assert_err(send(conn, PH_S1, "PIN", lang, old=PIN, new="246810"), "E05", lang)


def test_pin_unregistered_e03(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_NEW, "PIN", lang, old=PIN, new="246810"), "E03", lang)


# --- CHG / CFM -------------------------------------------------------------------------------


def _code_in(text: str) -> str:
    import re

    return re.search(r"\d{6}", text).group(0)


def test_chg_then_cfm_moves_phone(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_S1, "CHG", lang, pin=PIN, phone=PH_NEW)
    assert_ok(out, lang, PH_NEW)
    (notice,) = out.notices
    assert notice.to == PH_NEW and notice.priority == PRIORITY_ALERT
    code = _code_in(notice.text)
    assert code not in out.reply  # the code only goes to the new number
    out = send(conn, PH_NEW, "CFM", lang, now=NOW + timedelta(minutes=9), code=code)
    assert_ok(out, lang, "S1")
    assert accounts.by_phone(conn, PH_NEW).account_no == "S1"
    assert accounts.by_phone(conn, PH_S1) is None
    assert [n.to for n in out.notices] == [PH_S1]  # the old number is told
    # The code is single-use.
    assert send(conn, PH_NEW, "CFM", lang, code=code).error == "E09"


def test_confirmed_chg_moves_subscriptions_opt_out_and_tags(conn: Connection, world: dict,
                                                            lang: str) -> None:
    from store.models import opt_outs, phone_tags, subscriptions, topics

    topic = {r.code: r.id for r in conn.execute(sa.select(topics.c.code, topics.c.id))}
    conn.execute(subscriptions.insert(), [
        {"phone": PH_S1, "topic_id": topic["OUTAGE"], "window_start": 8, "window_end": 20,
         "created_at": NOW},
        {"phone": PH_S1, "topic_id": topic["BILL"], "window_start": None, "window_end": None,
         "created_at": NOW},
        # The new number already follows BILL itself: kept once, its own row.
        {"phone": PH_NEW, "topic_id": topic["BILL"], "window_start": 9, "window_end": 17,
         "created_at": NOW},
    ])
    conn.execute(phone_tags.insert(), [{"phone": PH_S1, "tag": "vip", "created_at": NOW}])
    conn.execute(opt_outs.insert().values(phone=PH_S1, at=NOW))
    out = send(conn, PH_S1, "CHG", lang, pin=PIN, phone=PH_NEW)
    code = _code_in(out.notices[0].text)
    assert_ok(send(conn, PH_NEW, "CFM", lang, code=code), lang, "S1")

    def rows(table, *cols):  # type: ignore[no-untyped-def]
        return sorted(tuple(r) for r in conn.execute(sa.select(*cols)))

    assert rows(subscriptions, subscriptions.c.phone, subscriptions.c.topic_id,
                subscriptions.c.window_start) == sorted(
        [(PH_NEW, topic["OUTAGE"], 8), (PH_NEW, topic["BILL"], 9)])
    assert rows(phone_tags, phone_tags.c.phone, phone_tags.c.tag) == [(PH_NEW, "vip")]
    assert rows(opt_outs, opt_outs.c.phone) == [(PH_NEW,)]


def test_cfm_expired_e09(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_S1, "CHG", lang, pin=PIN, phone=PH_NEW)
    code = _code_in(out.notices[0].text)
    out = send(conn, PH_NEW, "CFM", lang, now=NOW + timedelta(minutes=10), code=code)
    assert_err(out, "E09", lang, code)
    assert accounts.by_phone(conn, PH_S1) is not None
    status = conn.execute(sa.select(phone_changes.c.status)).scalar_one()
    assert status == "expired"


def test_cfm_wrong_code_e09_and_expires_after_five(conn: Connection, world: dict,
                                                   lang: str) -> None:
    out = send(conn, PH_S1, "CHG", lang, pin=PIN, phone=PH_NEW)
    code = _code_in(out.notices[0].text)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert_err(send(conn, PH_NEW, "CFM", lang, code=wrong), "E09", lang, wrong)
    assert send(conn, PH_NEW, "CFM", lang, code=code).error == "E09"


def test_cfm_nothing_pending_e09(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_NEW, "CFM", lang, code="123456"), "E09", lang)


def test_chg_wrong_pin_e04(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_S1, "CHG", lang, pin=WRONG, phone=PH_NEW)
    assert_err(out, "E04", lang)
    assert out.notices == ()


def test_chg_locked_e05(conn: Connection, world: dict, lang: str) -> None:
    accounts.lock_pin(conn, world["S1"], NOW + timedelta(minutes=1), now=NOW)
    assert_err(send(conn, PH_S1, "CHG", lang, pin=PIN, phone=PH_NEW), "E05", lang)


def test_chg_to_registered_number_e03(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_S1, "CHG", lang, pin=PIN, phone=PH_R3), "E03", lang, PH_R3)


def test_chg_same_number_e02(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_S1, "CHG", lang, pin=PIN, phone=PH_S1), "E02", lang)


def test_chg_unregistered_e03(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_NEW, "CHG", lang, pin=PIN, phone=PH_S1), "E03", lang)


# --- BAL -------------------------------------------------------------------------------------


def test_bal_subscriber(conn: Connection, world: dict, lang: str) -> None:
    assert_ok(send(conn, PH_S1, "BAL", lang), lang, "123.45", "88.00", "2025-01-20")


def test_bal_no_bill(conn: Connection, world: dict, lang: str) -> None:
    assert_ok(send(conn, PH_R1, "BAL", lang), lang, "1000.00")


def test_bal_manager_not_allowed_e03(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_MGR, "BAL", lang), "E03", lang)
