"""Failed-authentication throttling, one concept for every entry point (API keys, SMPP binds).

Each key (a source address, a system_id) may fail ``max_failures`` times within ``window``
seconds; the next failure locks it for ``lockout`` seconds, during which it is refused
without checking its credential at all (no KDF, no store read). One log line and one metric
increment per lockout, not per refused attempt, so a flood cannot flood the log either.

State is in memory, per process, and bounded: at most ``max_tracked`` keys are remembered;
beyond that the least recently touched are forgotten (a distributed flood may thereby lose a
lock early, but never grows memory). With several instances behind a load balancer an
attacker gets each instance's budget: the limits are per instance.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.metrics import METRICS

log = logging.getLogger("smsgw.auth")


@dataclass(frozen=True, slots=True)
class AuthLimits:
    max_failures: int = 10
    window: float = 60.0
    lockout: float = 300.0
    max_tracked: int = 10_000

    @classmethod
    def from_settings(cls, settings: Any) -> AuthLimits:
        return cls(max_failures=settings.auth_max_failures,
                   window=settings.auth_failure_window, lockout=settings.auth_lockout)


@dataclass(slots=True)
class _Record:
    first_failure: float
    failures: int = 0
    locked_until: float = 0.0


class FailureThrottle:
    """Counts failures per key; ``kind`` (api, smpp_bind) and ``scope`` (source, system_id)
    label the log line and the metric."""

    def __init__(self, kind: str, scope: str, limits: AuthLimits,
                 clock: Callable[[], float] = time.monotonic):
        self.kind = kind
        self.scope = scope
        self.limits = limits
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def retry_after(self, key: str) -> int | None:
        """Whole seconds until ``key`` may try again, or None when it is not locked."""
        rec = self._records.get(key)
        if rec is None:
            return None
        left = rec.locked_until - self._clock()
        return math.ceil(left) if left > 0 else None

    def failure(self, key: str) -> bool:
        """Count one failed attempt; True when it starts a lockout."""
        now = self._clock()
        rec = self._records.get(key)
        if rec is None or now - rec.first_failure > self.limits.window or (
                rec.locked_until and now >= rec.locked_until):
            rec = _Record(first_failure=now)
        rec.failures += 1
        self._remember(key, rec)
        METRICS.auth_failures.labels(kind=self.kind).inc()
        if rec.failures < self.limits.max_failures or rec.locked_until > now:
            return False
        rec.locked_until = now + self.limits.lockout
        METRICS.auth_lockouts.labels(kind=self.kind, scope=self.scope).inc()
        log.warning("auth lockout kind=%s %s=%s failures=%d in %gs: refused for %gs",
                    self.kind, self.scope, key, rec.failures, self.limits.window,
                    self.limits.lockout)
        return True

    def success(self, key: str) -> None:
        """A correct credential clears the key's failures (a lock stays until it expires)."""
        rec = self._records.get(key)
        if rec is not None and rec.locked_until <= self._clock():
            del self._records[key]

    def _remember(self, key: str, rec: _Record) -> None:
        self._records[key] = rec
        self._records.move_to_end(key)
        while len(self._records) > self.limits.max_tracked:
            self._records.popitem(last=False)
