"""The receipt sweep: parked delivery receipts are matched again, and reported when they age.

A receipt is parked in pending_receipts when its part is not visible yet. On PostgreSQL with
several instances the in-transaction hand-over (store.receipts.apply_pending_for) can miss
(both transactions look before the other commits: see store/receipts.py), so this task
re-tries the recently parked receipts every `interval` seconds in a fresh transaction, which
sees every commit made before it: a missed match is healed within one interval. Every
`full_every` ticks it also pages through all parked receipts (a part whose id was stored
long after its receipt, e.g. a late submit_sm_resp after an outage).

A receipt still unmatched after `unmatched_age` seconds is reported: the gauge
`smsgw_receipts_unmatched_aged`, and one WARNING per receipt with its ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gateway.metrics import METRICS
from gateway.periodic import Periodic
from store import receipts
from store.store import Store

log = logging.getLogger("smsgw.receipts")

# Receipts parked within this span are re-tried every tick; older ones every `full_every`.
RECENT = timedelta(minutes=10)
PAGE = 500
# Receipt ids already reported as aged, so each gets one log line (bounded: a flood of
# unknown ids must not grow memory without end; the gauge still counts them all).
_REPORTED_MAX = 10_000


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ReceiptSweep(Periodic):
    name = "receipt-sweep"
    log = log

    def __init__(self, store: Store, *, interval: float = 2.0, unmatched_age: float = 600.0,
                 full_every: int = 30, on_matched: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.store = store
        self.interval = interval
        self.unmatched_age = timedelta(seconds=unmatched_age)
        self.full_every = max(1, full_every)
        self.on_matched = on_matched  # e.g. wake the upstream server: a receipt may be owed
        self.clock = clock
        self._ticks = 0
        self._reported: set[int] = set()

    async def tick(self) -> int:
        """One pass; returns how many parked receipts were matched."""
        now = self.clock()
        self._ticks += 1
        full = self._ticks % self.full_every == 0
        matched = await self._retry(now, since=None if full else now - RECENT)
        if full or self._ticks == 1:  # a count over the whole table: not every tick
            await self._report(now)
        return matched

    async def _retry(self, now: datetime, *, since: datetime | None) -> int:
        total, after = 0, 0
        while True:
            result = await self.store.write(lambda c, a=after: receipts.retry_pending(
                c, now=now, since=since, after_id=a, limit=PAGE))
            for message_id in result.matched:
                log.info("mt=%d parked receipt matched on retry", message_id)
            total += len(result.matched)
            if result.last_id is None or result.scanned < PAGE:
                break
            after = result.last_id
        if total:
            METRICS.receipts_matched_late.inc(total)
            self.on_matched()
        return total

    async def _report(self, now: datetime) -> None:
        count, oldest = await self.store.read(
            lambda c: receipts.unmatched_before(c, now - self.unmatched_age))
        METRICS.receipts_unmatched_aged.set(count)
        for r in oldest:
            if r.id in self._reported:
                continue
            if len(self._reported) >= _REPORTED_MAX:
                self._reported.clear()
            self._reported.add(r.id)
            log.warning("receipt pending=%d smsc_id=%s stat=%s conn=%s unmatched since %s: "
                        "no message we sent has this id (kept in pending_receipts)",
                        r.id, r.smsc_message_id, r.state, r.connection,
                        r.received_at.isoformat())
