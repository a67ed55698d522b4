"""Sender guards with an explicit clock: rate limit (one E12 per window) and reply storms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
import yaml

from commands.guards import RateLimiter, ReplyStormGuard

A, B = "8613800000001", "8613800000002"


def test_under_limit_is_ok() -> None:
    rl = RateLimiter(max_messages=3, per_seconds=60)
    assert [rl.check(A, t) for t in (0, 1, 2)] == ["ok"] * 3


def test_over_limit_notifies_once_then_silent() -> None:
    rl = RateLimiter(max_messages=3, per_seconds=60)
    for t in (0, 1, 2):
        assert rl.check(A, t) == "ok"
    assert rl.check(A, 3) == "limited_notify"
    assert rl.check(A, 4) == "limited_silent"
    assert rl.check(A, 30) == "limited_silent"


def test_window_slides_and_refused_messages_do_not_count() -> None:
    rl = RateLimiter(max_messages=2, per_seconds=10)
    assert rl.check(A, 0) == "ok"
    assert rl.check(A, 5) == "ok"
    assert rl.check(A, 6) == "limited_notify"
    assert rl.check(A, 9) == "limited_silent"
    # The message at t=0 leaves the window at t=10: one slot free again.
    assert rl.check(A, 10) == "ok"
    assert rl.check(A, 11) == "limited_silent"  # still inside the notice's window
    assert rl.check(A, 15) == "ok"  # t=5 left
    # A new window for notices: the first refused message is told again.
    assert rl.check(A, 16.5) == "limited_notify"


def test_phones_are_independent() -> None:
    rl = RateLimiter(max_messages=1, per_seconds=60)
    assert rl.check(A, 0) == "ok"
    assert rl.check(A, 1) == "limited_notify"
    assert rl.check(B, 1) == "ok"


def test_faulty_phone_gets_bounded_answers() -> None:
    rl = RateLimiter(max_messages=10, per_seconds=60)
    verdicts = [rl.check(A, i * 0.5) for i in range(240)]  # 2 per second for 2 minutes
    assert verdicts.count("ok") == 20
    assert verdicts.count("limited_notify") == 2
    assert verdicts[10] == "limited_notify"


def test_datetime_clock() -> None:
    rl = RateLimiter(max_messages=1, per_seconds=60)
    t0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert rl.check(A, t0) == "ok"
    assert rl.check(A, t0 + timedelta(seconds=30)) == "limited_notify"
    assert rl.check(A, t0 + timedelta(seconds=61)) == "ok"


def test_idle_phones_are_evicted_and_memory_is_capped() -> None:
    rl = RateLimiter(max_messages=2, per_seconds=10, max_phones=100)
    for i in range(50):
        rl.check(f"86{i}", 0)
    assert len(rl) == 50
    rl.check(A, 20)  # everyone else idle for a full window
    assert len(rl) == 1
    for i in range(500):
        rl.check(f"87{i}", 30)
    assert len(rl) == 100


def test_rate_limiter_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        RateLimiter(max_messages=0)
    with pytest.raises(ValueError):
        RateLimiter(per_seconds=0)


def test_same_error_reply_to_the_same_text_once_a_minute() -> None:
    g = ReplyStormGuard(per_seconds=60)
    err = "ERR E01 unknown command 'FOO'. HELP for format"
    assert g.allow(A, "FOO", err, 0) is True
    assert g.allow(A, "FOO", err, 1) is False
    assert g.allow(A, "FOO", err, 59.9) is False
    assert g.allow(A, "FOO", err, 60) is True
    assert g.allow(A, "FOO", err, 61) is False


def test_storm_guard_is_per_number_text_and_reply() -> None:
    g = ReplyStormGuard(per_seconds=60)
    assert g.allow(A, "X", "ERR E01 x", 0)
    assert g.allow(B, "X", "ERR E01 x", 0)
    assert g.allow(A, "X", "ERR E02 y", 0)
    assert not g.allow(A, "X", "ERR E01 x", 1)


def test_storm_guard_never_hides_the_answer_to_a_different_message() -> None:
    """Issue 8: six ORDs with different PINs each get their E03; a locked phone sending the
    right PIN after a wrong one gets its E05 (the same reply text, a different message)."""
    g = ReplyStormGuard(per_seconds=60)
    e03 = "ERR E03 SMS ordering is not enabled for this account"
    assert all(g.allow(A, f"ORD {pin} 1001*1", e03, i) for i, pin in
               enumerate(("111111", "222222", "333333", "444444", "555555", "666666")))
    e05 = "ERR E05 locked"
    assert g.allow(A, "ORD 000009 1001*1", e05, 10)
    assert g.allow(A, "ORD 123456 1001*1", e05, 11)


def test_storm_guard_memory_is_bounded() -> None:
    g = ReplyStormGuard(per_seconds=60, max_entries=10)
    for i in range(100):
        g.allow(f"86{i}", "X", "ERR", 0)
    assert len(g) == 10
    g.allow(A, "X", "ERR", 120)  # everything older than a minute expires
    assert len(g) == 1


def test_opt_out_confirmation_once_per_window_when_limited() -> None:
    rl = RateLimiter(max_messages=1, per_seconds=60)
    assert rl.check(A, 0) == "ok"
    assert rl.check(A, 1) == "limited_notify"
    assert rl.allow_opt_out_notice(A, 2) is True
    assert rl.allow_opt_out_notice(A, 3) is False
    assert rl.allow_opt_out_notice(A, 62) is True


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_guard_templates(lang: str) -> None:
    # Read our own file (the merged table is checked by the templates' own tests).
    path = resources.files("commands").joinpath("templates", lang, "guards.yaml")
    data = yaml.safe_load(path.read_text("utf-8"))
    assert set(data) == {"e12_rate_limited", "incomplete_message"}
    e12 = data["e12_rate_limited"].format()  # no placeholders: rendered without values
    assert e12.startswith("ERR E12 ")
    assert data["incomplete_message"].format()
