"""Token bucket for a connection's send rate (submit_sm per second), with an injectable clock.

Reservation style: `reserve()` takes a token *now* and answers how long the caller has to
wait before using it. The balance may go negative, so callers that reserve one after
another are served strictly in reservation order (FIFO) - a plain "retry until a token is
there" loop lets a later caller overtake an earlier one when both wake up together, which
would reorder the SMPP stream.

`rate` 0 means unlimited. `burst` (default max(1, rate)) is how many tokens an idle bucket
holds, i.e. how many submits may leave back to back after a quiet spell; the simulator's
throttle uses the same shape, so a bucket set to the SMSC's contracted TPS never trips it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate < 0:
            raise ValueError(f"rate must be >= 0 (0 = unlimited), got {rate}")
        if burst is not None and burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else max(1.0, self.rate))
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)  # a clock that steps back adds nothing
        self._last = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)

    @property
    def tokens(self) -> float:
        """Tokens available now (negative: already promised to earlier reservations)."""
        if self.unlimited:
            return float("inf")
        self._refill()
        return self._tokens

    def try_acquire(self, n: float = 1) -> bool:
        """Take ``n`` tokens if they are there now; never goes into debt."""
        if self.unlimited:
            return True
        self._refill()
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    def reserve(self, n: float = 1) -> float:
        """Take ``n`` tokens and return the seconds to wait before using them (0 = now)."""
        if self.unlimited:
            return 0.0
        self._refill()
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def refund(self, n: float = 1) -> None:
        """Give back a reservation that was not used (e.g. the bind went down meanwhile)."""
        if not self.unlimited:
            self._refill()
            self._tokens = min(self.capacity, self._tokens + n)

    async def acquire(self, n: float = 1, *,
                      sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        delay = self.reserve(n)
        if delay > 0:
            await sleep(delay)
