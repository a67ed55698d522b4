"""FailureThrottle's rules, with a hand-driven clock (the transport tests are in
tests/api/test_auth_security.py and tests/test_bind_security.py)."""

from __future__ import annotations

from gateway.auth_throttle import AuthLimits, FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, **limits: float) -> FailureThrottle:
    base = {"max_failures": 3, "window": 60.0, "lockout": 300.0}
    return FailureThrottle("test", "source", AuthLimits(**{**base, **limits}), clock=clock)


def test_locks_on_the_nth_failure_within_the_window_then_expires() -> None:
    clock = Clock()
    t = throttle(clock)
    assert [t.failure("a"), t.failure("a")] == [False, False]
    assert t.retry_after("a") is None
    assert t.failure("a") is True
    assert t.retry_after("a") == 300 and t.retry_after("b") is None
    clock.now += 299.5
    assert t.retry_after("a") == 1  # whole seconds, rounded up
    clock.now += 1
    assert t.retry_after("a") is None
    assert t.failure("a") is False  # a fresh count after the lockout


def test_failures_spread_wider_than_the_window_never_lock() -> None:
    clock = Clock()
    t = throttle(clock)
    for _ in range(10):
        assert t.failure("a") is False
        assert t.failure("a") is False
        clock.now += 61


def test_success_clears_failures_but_not_a_running_lockout() -> None:
    clock = Clock()
    t = throttle(clock)
    t.failure("a")
    t.failure("a")
    t.success("a")
    assert t.failure("a") is False and t.failure("a") is False
    assert t.failure("a") is True
    t.success("a")
    assert t.retry_after("a") == 300


def test_memory_is_bounded() -> None:
    clock = Clock()
    t = throttle(clock, max_tracked=100)
    for i in range(10_000):
        t.failure(f"10.0.{i // 256}.{i % 256}")
    assert len(t._records) == 100
