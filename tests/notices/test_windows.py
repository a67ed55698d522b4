"""hold_until: recipient windows (wrapping midnight), quiet hours for priority 3 only,
priorities 0 and 1 never held; enqueue_notice sets schedule_at to the opening."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlalchemy.engine import Connection

from store import outbound
from store.notices import (
    NoticePolicy,
    enqueue_notice,
    hold_until,
    parse_quiet_hours,
    parse_window,
)
from tests.notices.conftest import NOW, SHANGHAI, local


def h(now: datetime, priority: int = 2, window=None, quiet=None) -> datetime | None:  # type: ignore[no-untyped-def]
    return hold_until(now, priority=priority, recipient_window=window, quiet_hours=quiet,
                      tz=SHANGHAI)


def test_parse_window_forms() -> None:
    assert parse_window(("08:00", "21:30")) == (time(8), time(21, 30))
    assert parse_window((8, 21)) == (time(8), time(21))
    assert parse_window((22, 24)) == (time(22), time(0))
    assert parse_window("21:00-08:00") == (time(21), time(8))
    assert parse_window((None, None)) is None
    assert parse_window(("09:00", "09:00")) is None  # whole day
    assert parse_quiet_hours("") is None and parse_quiet_hours("off") is None
    with pytest.raises(ValueError):
        parse_window("25:00-08:00")
    with pytest.raises(ValueError):
        parse_window("nonsense")


def test_inside_the_window_is_not_held() -> None:
    assert h(local(2025, 1, 6, 12), window=("08:00", "21:00")) is None


def test_before_the_window_waits_for_today_s_opening() -> None:
    assert h(local(2025, 1, 6, 6, 30), window=("08:00", "21:00")) == local(2025, 1, 6, 8)


def test_after_the_window_waits_for_tomorrow() -> None:
    assert h(local(2025, 1, 6, 22), window=("08:00", "21:00")) == local(2025, 1, 7, 8)
    assert h(local(2025, 1, 6, 21), window=("08:00", "21:00")) == local(2025, 1, 7, 8)


def test_window_wrapping_past_midnight() -> None:
    night = ("22:00", "02:00")
    assert h(local(2025, 1, 6, 23), window=night) is None
    assert h(local(2025, 1, 7, 1, 59), window=night) is None
    assert h(local(2025, 1, 7, 2), window=night) == local(2025, 1, 7, 22)
    assert h(local(2025, 1, 6, 12), window=night) == local(2025, 1, 6, 22)


def test_priorities_0_and_1_are_never_held() -> None:
    for p in (0, 1):
        assert h(local(2025, 1, 6, 3), p, window=("08:00", "21:00"), quiet="21:00-08:00") \
            is None


def test_quiet_hours_hold_priority_3_only() -> None:
    at = local(2025, 1, 6, 23)
    assert h(at, 2, quiet="21:00-08:00") is None
    assert h(at, 3, quiet="21:00-08:00") == local(2025, 1, 7, 8)
    assert h(local(2025, 1, 7, 7, 59), 3, quiet="21:00-08:00") == local(2025, 1, 7, 8)
    assert h(local(2025, 1, 7, 8), 3, quiet="21:00-08:00") is None


def test_window_and_quiet_hours_together() -> None:
    # Window 07:00-23:00, quiet 21:00-08:00 → priority 3 may go 08:00-21:00.
    w, q = ("07:00", "23:00"), "21:00-08:00"
    assert h(local(2025, 1, 6, 7, 30), 3, window=w, quiet=q) == local(2025, 1, 6, 8)
    assert h(local(2025, 1, 6, 7, 30), 2, window=w, quiet=q) is None
    assert h(local(2025, 1, 6, 22), 3, window=w, quiet=q) == local(2025, 1, 7, 8)
    # A window entirely inside quiet hours: the recipient's window wins.
    assert h(local(2025, 1, 6, 12), 3, window=("22:00", "23:00"), quiet=q) == \
        local(2025, 1, 6, 22)


def test_answer_is_in_now_s_zone() -> None:
    held = h(local(2025, 1, 6, 6), window=("08:00", "21:00"))
    assert held is not None and held.tzinfo == UTC and held == datetime(2025, 1, 6, 0, 0,
                                                                         tzinfo=UTC)


def test_enqueue_notice_sets_schedule_at(conn: Connection) -> None:
    at_night = local(2025, 1, 6, 23)
    policy = NoticePolicy(source_addr="10690", quiet_hours=parse_quiet_hours("21:00-08:00"),
                          tz=SHANGHAI)
    held = enqueue_notice(conn, to="8613800000001", text="bulk", priority=3, now=at_night,
                          policy=policy)
    free = enqueue_notice(conn, to="8613800000001", text="tx", priority=2, now=at_night,
                          policy=policy)
    windowed = enqueue_notice(conn, to="8613800000001", text="tx", priority=2, now=at_night,
                              window=("09:00", "18:00"), policy=policy)
    later = enqueue_notice(conn, to="8613800000001", text="at noon", priority=2, now=NOW,
                           schedule_at=local(2025, 1, 6, 20), window=("09:00", "18:00"),
                           policy=policy)
    msgs = {i: outbound.get_message(conn, i) for i in (held, free, windowed, later)}
    assert msgs[held]["schedule_at"] == local(2025, 1, 7, 8)
    assert msgs[free]["schedule_at"] is None
    assert msgs[windowed]["schedule_at"] == local(2025, 1, 7, 9)
    assert msgs[later]["schedule_at"] == local(2025, 1, 7, 9)
    assert msgs[held]["source_addr"] == "10690" and msgs[held]["status"] == "queued"
    # Held messages are not claimable before the opening, and are after it.
    rows = outbound.claim_batch(conn, instance="t", connection="c", now=at_night, limit=10)
    assert [r.id for r in rows] == [free]
    rows = outbound.claim_batch(conn, instance="t", connection="c",
                                now=local(2025, 1, 7, 9), limit=10)
    assert {r.id for r in rows} == {held, windowed, later}
