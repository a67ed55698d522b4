"""Is the SMSC holding deliver_sm for us? How often our inbound window is full tells.

Receipts and MOs share deliver_sm, and an SMSC sends at most its window of them unanswered.
When receipts come back faster than we can commit and acknowledge them, the SMSC refills the
window the moment we answer and queues the rest — with people's MOs behind them (issue 10:
an MO waited 8-33 s for its ack during a drain). A count of receipts still awaited cannot
tell that apart from an SMSC that merely sends its receipts late; the window can: receipts
that come late but at a pace we keep up with leave it full only now and then.

So each bind measures, over short periods, the share of time it held as many deliver_sm at
once (received, not yet answered) as it has ever held — the SMSC's window, learned. Measured
here (benchmarks/outbound.py): about 0.55-0.85 while the SMSC held a backlog, the window
swinging between full and empty as group commits answer it in batches. `backlogged()` is
true while the share is at least `threshold`: the dispatcher then stops claiming for this
bind until receipts catch up (gateway/dispatcher.py `receipts_behind`).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class InboundWindow:
    def __init__(self, *, period: float = 0.25, threshold: float = 0.3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self.threshold = threshold
        self.clock = clock
        self.inflight = 0  # deliver_sm received and not yet answered
        self.peak = 0  # the most at once: the SMSC's window, as far as we have seen
        self.full = 0.0  # last period's share of time with the window full
        now = clock()
        self._since = now  # last change of `inflight`
        self._period_start = now
        self._full_s = 0.0  # seconds full this period

    def _advance(self, now: float) -> None:
        if self.peak and self.inflight >= self.peak:
            self._full_s += now - self._since
        self._since = now
        span = now - self._period_start
        if span >= self.period:
            self.full = self._full_s / span
            self._full_s = 0.0
            self._period_start = now

    def opened(self) -> None:
        """A deliver_sm arrived."""
        self._advance(self.clock())
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)

    def closed(self) -> None:
        """Its deliver_sm_resp is going out."""
        self._advance(self.clock())
        self.inflight = max(0, self.inflight - 1)

    def backlogged(self) -> bool:
        """The window was full for `threshold` of the last period or more. A window of one
        deliver_sm says nothing (always either full or empty): never backlogged."""
        self._advance(self.clock())
        return self.peak >= 2 and self.full >= self.threshold
