"""gateway/inbound_window.py: a full deliver_sm window means the SMSC is holding messages."""

from __future__ import annotations

from gateway.inbound_window import InboundWindow


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def traffic(w: InboundWindow, clock: Clock, *, window: int, answer_in: float,
            gap: float, seconds: float) -> None:
    """deliver_sm arriving every ``gap`` s (never more than ``window`` unanswered), each
    answered ``answer_in`` s after it arrived."""
    due: list[float] = []  # answer times of those in our hands
    next_arrival = clock.now
    end = clock.now + seconds
    while clock.now < end:
        events = [t for t in due if t <= next_arrival]
        for t in sorted(events):
            clock.now = t
            due.remove(t)
            w.closed()
        clock.now = next_arrival
        if len(due) < window:
            w.opened()
            due.append(clock.now + answer_in)
            next_arrival = clock.now + gap
        else:  # the SMSC waits for a free slot: it comes with the next answer
            next_arrival = min(due)
    for t in sorted(due):  # those still in our hands are answered in their time
        clock.now = max(clock.now, t)
        w.closed()


def test_an_smsc_holding_receipts_keeps_the_window_full() -> None:
    clock = Clock()
    w = InboundWindow(clock=clock)
    # 10 in flight, each answered in 20 ms, the SMSC sends the next at once: backlog.
    traffic(w, clock, window=10, answer_in=0.02, gap=0.0001, seconds=2)
    assert w.peak == 10
    assert w.backlogged()


def test_late_receipts_taken_in_promptly_are_no_backlog() -> None:
    clock = Clock()
    w = InboundWindow(clock=clock)
    traffic(w, clock, window=10, answer_in=0.02, gap=0.0001, seconds=0.05)  # a burst once
    # Then receipts trickle in (they came late from the handsets), 300/s, answered in 20 ms.
    traffic(w, clock, window=10, answer_in=0.02, gap=1 / 300, seconds=2)
    assert w.peak == 10
    assert not w.backlogged()


def test_the_backlog_clears_once_the_smsc_has_sent_what_it_held() -> None:
    clock = Clock()
    w = InboundWindow(clock=clock)
    traffic(w, clock, window=10, answer_in=0.02, gap=0.0001, seconds=1)
    assert w.backlogged()
    traffic(w, clock, window=10, answer_in=0.02, gap=0.05, seconds=1)
    assert not w.backlogged()


def test_a_window_of_one_says_nothing() -> None:
    clock = Clock()
    w = InboundWindow(clock=clock)
    traffic(w, clock, window=1, answer_in=0.02, gap=0.0001, seconds=1)
    assert w.peak == 1 and not w.backlogged()
