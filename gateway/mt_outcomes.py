"""What happened to our MTs at the SMSC, recorded in batches: submit responses and receipts.

Recording each submit_sm_resp and each receipt in its own write op cost about nine and six
statements apiece and was half the store writer's time (benchmarks/README.md, profile).
Here they queue up and are applied together: while one batch is in the writer, the next
one fills, so under load a batch holds everything that came in during a commit, and at
rest it holds one item and costs one writer round, as before. A batch is ONE write op:
submit responses first, then receipts, so a receipt that arrives with its own submit
response in the same batch matches at once instead of being parked.

The promises are those of the single calls: `submitted` returns once the SMSC id is
committed (retried through a database outage: the SMSC has the message whatever the
database does), `receipt` once the receipt is committed (so the deliver_sm_resp follows the
commit; an outage fails it and the SMSC delivers it again). A batch that fails for another
reason (a bug, a bad row) is applied again item by item, so only the faulty item fails.

It also counts parts whose receipt is awaited (`receipts_awaited`): the dispatcher stops
claiming while too many are, so receipts keep pace with submits and cannot pile up at the
SMSC in front of MOs (issue 10: inbound is never starved by outbound).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from store import outbound, receipts, upstream
from store.db import StoreUnavailable
from store.outbound import SubmittedPart
from store.receipts import ReceiptIn
from store.store import RETRY_MAX_PAUSE, Store

log = logging.getLogger("smsgw.dispatcher")

# A submitted part stops counting as "awaiting its receipt" after this long: some SMSCs
# send receipts late (a switched-off handset) or never; only recent ones measure a backlog.
RECEIPT_WAIT = 10.0


def _now() -> datetime:
    return datetime.now(UTC)


class MtOutcomes:
    def __init__(self, store: Store, *, receipt_wait: float = RECEIPT_WAIT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.receipt_wait = receipt_wait
        self.clock = clock
        # Called when a receipt made an upstream application owed one (its SMPP server).
        self.on_upstream_owed: Callable[[], None] = lambda: None
        self._submits: list[tuple[SubmittedPart, asyncio.Future[None]]] = []
        self._receipts: list[tuple[ReceiptIn, asyncio.Future[int | None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._awaited: deque[float] = deque()  # submit times of parts awaiting a receipt
        # Counters for tests and the benchmark.
        self.batches = 0
        self.largest_batch = 0

    # -- API -----------------------------------------------------------------------------------

    async def submitted(self, item: SubmittedPart, *, receipt_expected: bool) -> None:
        """Record a part the SMSC accepted; returns once committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submits.append((item, future))
        if receipt_expected:
            self._awaited.append(self.clock())
        self._kick()
        await future

    async def receipt(self, item: ReceiptIn) -> int | None:
        """Apply a receipt; the message id it matched, or None when parked for later."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._receipts.append((item, future))
        if self._awaited:
            self._awaited.popleft()
        self._kick()
        return await future

    def receipts_awaited(self) -> int:
        """Parts submitted within `receipt_wait` s whose receipt has not come in yet."""
        horizon = self.clock() - self.receipt_wait
        while self._awaited and self._awaited[0] < horizon:
            self._awaited.popleft()
        return len(self._awaited)

    async def drain(self) -> None:
        """Wait until everything handed in so far is recorded (or has failed)."""
        while self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    # -- batching ------------------------------------------------------------------------------

    def _kick(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="mt-outcomes")

    async def _run(self) -> None:
        pause = 0.05
        try:
            while self._submits or self._receipts:
                submits, self._submits = self._submits, []
                recs, self._receipts = self._receipts, []
                if await self._apply(submits, recs):
                    pause = 0.05
                else:  # the database is away: the submits wait for the next attempt
                    self._submits[:0] = submits
                    await asyncio.sleep(pause)
                    pause = min(RETRY_MAX_PAUSE, pause * 2)
        finally:
            self._task = None

    async def _apply(self, submits: list[tuple[SubmittedPart, asyncio.Future[None]]],
                     recs: list[tuple[ReceiptIn, asyncio.Future[int | None]]]) -> bool:
        """One write op for the batch; False when the database is unavailable."""
        now = _now()
        parts = [s for s, _ in submits]
        items = [r for r, _ in recs]

        def apply(c: Connection) -> tuple[list[int | None], list[int]]:
            outbound.mark_parts_submitted(c, parts, now=now)
            found = receipts.apply_receipts(c, items, now=now)
            owed = upstream.owe_receipts(c, [m for m in found if m is not None], now=now)
            return found, owed

        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(parts) + len(items))
        try:
            # urgent: the receipts' deliver_sm_resp waits on it, on the window MOs share
            found, owed = await self.store.write(apply, urgent=True)
        except StoreUnavailable as exc:
            log.warning("%d submit response(s) wait for the database, %d receipt(s) refused "
                        "(the SMSC delivers them again): %s", len(parts), len(items), exc)
            for _, f in recs:
                _settle(f, error=exc)
            return False
        except Exception:
            log.exception("a batch of %d submit response(s) and %d receipt(s) failed; "
                          "recording them one by one", len(parts), len(items))
            await asyncio.gather(*(self._one_submit(s, f) for s, f in submits),
                                 *(self._one_receipt(r, f) for r, f in recs))
            return True
        for _, f in submits:
            _settle(f, None)
        for (_, f), m in zip(recs, found, strict=True):
            _settle(f, m)
        if owed:
            self.on_upstream_owed()
        return True

    async def _one_submit(self, item: SubmittedPart, future: asyncio.Future[None]) -> None:
        try:
            await self.store.write_until_done(lambda c: outbound.mark_part_submitted(
                c, message_id=item.message_id, part_no=item.part_no, parts=item.parts,
                smsc_message_id=item.smsc_message_id, now=_now(),
                cost_millis=item.cost_millis, connection=item.connection),
                what=f"mt={item.message_id} part {item.part_no} submitted")
        except Exception as exc:
            _settle(future, error=exc)
        else:
            _settle(future, None)

    async def _one_receipt(self, item: ReceiptIn, future: asyncio.Future[int | None]) -> None:
        def apply(c: Connection) -> tuple[int | None, bool]:
            now = _now()
            m = receipts.apply_receipt(
                c, connection=item.connection, smsc_message_id=item.smsc_message_id,
                state=item.state, error_code=item.error_code, raw=item.raw, now=now)
            return m, m is not None and upstream.owe_receipt(c, m, now=now) is not None

        try:
            m, owed = await self.store.write(apply, urgent=True)
        except Exception as exc:
            _settle(future, error=exc)
            return
        _settle(future, m)
        if owed:
            self.on_upstream_owed()


def _settle(future: asyncio.Future[Any], value: Any = None, *,
            error: BaseException | None = None) -> None:
    if future.done():  # the caller was cancelled (a stop): the write happened regardless
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
