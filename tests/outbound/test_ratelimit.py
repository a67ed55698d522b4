"""Token bucket (gateway/ratelimit.py) with a fake clock."""

from __future__ import annotations

import pytest

from gateway.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def test_unlimited_never_waits() -> None:
    b = TokenBucket(0, clock=FakeClock())
    assert all(b.reserve() == 0 for _ in range(10_000))
    assert b.try_acquire(1_000)


def test_burst_then_rate() -> None:
    clock = FakeClock()
    b = TokenBucket(10, clock=clock)  # burst defaults to max(1, rate) = 10
    assert [b.try_acquire() for _ in range(11)] == [True] * 10 + [False]
    clock.advance(0.1)  # one token back
    assert b.try_acquire() and not b.try_acquire()
    clock.advance(100)  # never more than the burst
    assert sum(b.try_acquire() for _ in range(50)) == 10


def test_reservations_are_fifo_and_spaced_by_rate() -> None:
    clock = FakeClock()
    b = TokenBucket(5, burst=1, clock=clock)
    delays = [b.reserve() for _ in range(4)]
    assert delays == pytest.approx([0.0, 0.2, 0.4, 0.6])
    clock.advance(0.6)
    assert b.reserve() == pytest.approx(0.2)  # still behind the earlier reservations


def test_refund_and_fractional_rate() -> None:
    clock = FakeClock()
    b = TokenBucket(0.5, clock=clock)  # one every two seconds, burst 1
    assert b.reserve() == 0
    assert b.reserve() == pytest.approx(2.0)
    b.refund()
    assert b.reserve() == pytest.approx(2.0)
    clock.advance(2.0)  # that token went to the reservation
    assert not b.try_acquire()
    clock.advance(2.0)
    assert b.try_acquire()


def test_clock_going_back_adds_nothing() -> None:
    clock = FakeClock()
    b = TokenBucket(1, clock=clock)
    assert b.try_acquire()
    clock.advance(-5)
    assert not b.try_acquire()


def test_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        TokenBucket(-1)
    with pytest.raises(ValueError):
        TokenBucket(5, burst=0)


async def test_acquire_sleeps_the_reserved_time() -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(dt: float) -> None:
        slept.append(dt)
        clock.advance(dt)

    b = TokenBucket(4, burst=1, clock=clock)
    for _ in range(3):
        await b.acquire(sleep=sleep)
    assert slept == pytest.approx([0.25, 0.25])
