"""SUB UNSUB and opt-outs."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from store.domain import topics
from tests.domain.conftest import NOW, PH_NEW, PH_S1, assert_err, assert_ok, send


def test_sub_unregistered_public_topic(conn: Connection, world: dict, lang: str) -> None:
    out = send(conn, PH_NEW, "SUB", lang, topic="outage", window=None)
    assert_ok(out, lang, "OUTAGE", "停电通知" if lang == "zh" else "Power outage")
    t = topics.by_code(conn, "OUTAGE")
    sub = topics.subscription(conn, PH_NEW, t.id)
    assert sub.window_start is None


def test_sub_window_and_update(conn: Connection, world: dict, lang: str) -> None:
    send(conn, PH_S1, "SUB", lang, topic="OUTAGE", window=None)
    out = send(conn, PH_S1, "SUB", lang, topic="OUTAGE", window=(8, 20))
    assert_ok(out, lang, "08:00-20:00")
    t = topics.by_code(conn, "OUTAGE")
    sub = topics.subscription(conn, PH_S1, t.id)
    assert (sub.window_start, sub.window_end) == (8, 20)


def test_sub_unknown_or_inactive_topic_e11(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_S1, "SUB", lang, topic="NOPE", window=None), "E11", lang, "NOPE")
    assert_err(send(conn, PH_S1, "SUB", lang, topic="OLD", window=None), "E11", lang, "OLD")


def test_sub_private_topic_needs_registration_e03(conn: Connection, world: dict,
                                                  lang: str) -> None:
    assert_err(send(conn, PH_NEW, "SUB", lang, topic="BILL", window=None), "E03", lang, "BILL")
    assert_ok(send(conn, PH_S1, "SUB", lang, topic="BILL", window=None), lang)


def test_unsub_topic(conn: Connection, world: dict, lang: str) -> None:
    send(conn, PH_NEW, "SUB", lang, topic="OUTAGE", window=None)
    assert_ok(send(conn, PH_NEW, "UNSUB", lang, topic="OUTAGE"), lang, "OUTAGE")
    t = topics.by_code(conn, "OUTAGE")
    assert topics.subscription(conn, PH_NEW, t.id) is None
    assert_ok(send(conn, PH_NEW, "UNSUB", lang, topic="OUTAGE"), lang, "OUTAGE")
    assert not topics.is_opted_out(conn, PH_NEW)


def test_unsub_unknown_topic_e11(conn: Connection, world: dict, lang: str) -> None:
    assert_err(send(conn, PH_NEW, "UNSUB", lang, topic="NOPE"), "E11", lang, "NOPE")


def test_unsub_all_opts_out_and_sub_clears(conn: Connection, world: dict, lang: str) -> None:
    send(conn, PH_NEW, "SUB", lang, topic="OUTAGE", window=None)
    t = topics.by_code(conn, "OUTAGE")
    assert [s.phone for s in topics.subscribers(conn, t.id)] == [PH_NEW]
    assert_ok(send(conn, PH_NEW, "UNSUB", lang, topic=None), lang)
    assert topics.is_opted_out(conn, PH_NEW)
    assert topics.subscription(conn, PH_NEW, t.id) is None
    # STOP twice is fine.
    assert_ok(send(conn, PH_NEW, "UNSUB", lang, topic=None), lang)
    send(conn, PH_NEW, "SUB", lang, topic="PROMO" if False else "OUTAGE", window=None)
    assert not topics.is_opted_out(conn, PH_NEW)


def test_opted_out_numbers_excluded_from_subscribers(conn: Connection, world: dict) -> None:
    t = topics.by_code(conn, "OUTAGE")
    topics.subscribe(conn, PH_S1, t.id, window=None, now=NOW)
    topics.unsubscribe_all(conn, "8613000000000", now=NOW)
    assert [s.phone for s in topics.subscribers(conn, t.id)] == [PH_S1]
