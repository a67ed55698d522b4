"""Group-commit writer: one thread, one connection, many callers per transaction.

A commit costs an fsync (synchronous=FULL / synchronous_commit=on). Committing every
caller's work separately caps the gateway at a few hundred messages a second; taking all
the work queued while the previous commit was in flight and committing it together costs
one fsync per batch (notes-measured.md: 405 -> 4,557 MO/s on SQLite). Each caller still
awaits the commit of its own batch, so "acknowledged" keeps meaning "on disk".

Urgent ops (``write(fn, urgent=True)``: an MO or receipt a peer waits to have acknowledged,
a message an API client waits to have accepted) go into the next batch ahead of everything
queued: when the gateway falls behind, the backlog of MO processing, claims and housekeeping
waits, not the SMSC's acknowledgements (an ack later than the SMSC's response timeout makes
it deliver the message again).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.db import WRITE_OPTION, is_unavailable, unavailable
from store.events import begin_deferred, discard_deferred, flush_deferred

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAX_BATCH = 500


@dataclass(slots=True)
class _Op:
    fn: Callable[[Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    urgent: bool = False


@dataclass(slots=True)
class _Stop:
    pass


@dataclass(slots=True)
class _Outcome:
    ok: bool
    value: Any = None
    error: BaseException | None = None


class GroupCommitWriter:
    """Runs write operations from the event loop on one dedicated thread, in batches.

    An op is ``fn(conn) -> T``: it runs inside a transaction shared with the other ops of
    its batch, must not commit or roll back itself, and must not have side effects outside
    the database, because it may be run a second time after another op of its batch failed.
    Rows it returns must be materialised (``.all()``, ``.one()``) inside ``fn``.
    """

    def __init__(self, engine: sa.Engine, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Op | _Stop] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closing = False
        # Counters, read by tests and metrics. Only the writer thread mutates them.
        self.batches_committed = 0
        self.ops_committed = 0
        self.ops_failed = 0
        self.batch_retries = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="smsgw-store-writer", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def close(self) -> None:
        """Stop accepting work, let the thread finish everything queued, join it."""
        if self._thread is None:
            return
        if not self._closing:
            self._closing = True
            self._queue.put(_Stop())
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    # -- API ---------------------------------------------------------------------------------

    async def write(self, fn: Callable[[Connection], T], *, urgent: bool = False) -> T:
        """Run ``fn`` in the next group-committed transaction; return once it is committed.

        ``urgent``: a peer is waiting on this commit (an acknowledgement): it overtakes the
        non-urgent ops already queued.
        """
        if self._closing or self._thread is None:
            raise RuntimeError("store writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Op(fn, loop, future, urgent))
        # If the caller is cancelled the op still runs (it is already queued): callers that
        # need to know must treat a cancelled write as "maybe written", e.g. MO dedup.
        return await future

    # -- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        # Connected lazily inside _try_batch: if the database is down, callers get the error
        # instead of waiting forever on a thread that died at start-up.
        conn: Connection | None = None
        urgent: deque[_Op] = deque()
        normal: deque[_Op] = deque()
        stopping = False

        def take(item: _Op | _Stop) -> None:
            nonlocal stopping
            if isinstance(item, _Stop):
                stopping = True
            else:
                (urgent if item.urgent else normal).append(item)

        try:
            while True:
                if not urgent and not normal:
                    if stopping:
                        break  # _Stop comes after every op accepted before close()
                    take(self._queue.get())
                while True:  # everything queued so far, sorted into the two lanes
                    try:
                        take(self._queue.get_nowait())
                    except queue.Empty:
                        break
                # Urgent ops first, but a tenth of the batch is kept for the rest: a flood of
                # acknowledgements must not stop MO processing altogether.
                batch: list[_Op] = []
                for lane, cap in ((urgent, self._max_batch - self._max_batch // 10),
                                  (normal, self._max_batch)):
                    while lane and len(batch) < cap:
                        batch.append(lane.popleft())
                while urgent and len(batch) < self._max_batch:  # room the rest did not use
                    batch.append(urgent.popleft())
                if batch:
                    try:
                        conn = self._process(conn, batch)
                    except Exception as exc:  # a bug here must not strand the callers
                        log.exception("store writer: batch processing failed")
                        _resolve_all([(op, _Outcome(False, error=exc)) for op in batch])
                        conn = _discard(conn)
        finally:
            _discard(conn)

    def _connect(self) -> Connection:
        return self._engine.connect().execution_options(**{WRITE_OPTION: True})

    def _process(self, conn: Connection | None, ops: Sequence[_Op]) -> Connection | None:
        """Commit ``ops``; isolate failures so only the faulty op's caller sees an error."""
        pending = list(ops)
        fresh_retry = True
        while pending:
            results, failed_at, error, conn = self._try_batch(conn, pending)
            if error is None:
                self.batches_committed += 1
                self.ops_committed += len(pending)
                _resolve_all([(op, _Outcome(True, value))
                              for op, value in zip(pending, results, strict=True)])
                return conn
            self.batch_retries += 1
            if is_unavailable(error):
                if fresh_retry and failed_at is not None:
                    # Rolled back before COMMIT (nothing saved): a stale connection (server
                    # restarted, backend terminated) deserves one try on a fresh one.
                    fresh_retry = False
                    continue
                # The database is down: blaming ops one by one would only cost a connect
                # attempt each. Every caller of the batch gets the same clear error; the
                # next batch tries again (the writer itself never stops).
                log.warning("store writer: database unavailable, %d write(s) refused: %s",
                            len(pending), error)
                self.ops_failed += len(pending)
                _resolve_all([(op, _Outcome(False, error=_chain(unavailable(error), error)))
                              for op in pending])
                return conn
            if failed_at is None or len(pending) == 1:
                # The commit itself failed (or a lone op): no op to blame, so give each op its
                # own transaction and its own verdict.
                for op in pending:
                    conn = self._process_single(conn, op)
                return conn
            # Ops before the failing one succeeded in this order before: commit them together
            # again, then retry the faulty one alone (it may have been a victim of a transient
            # error), then carry on with the rest as a new batch. A failure thus costs two
            # extra commits instead of one commit per op of the batch.
            head, culprit = pending[:failed_at], pending[failed_at]
            pending = pending[failed_at + 1 :]
            if head:
                conn = self._process(conn, head)
            conn = self._process_single(conn, culprit)
        return conn

    def _process_single(self, conn: Connection | None, op: _Op) -> Connection | None:
        results, _failed_at, error, conn = self._try_batch(conn, [op])
        if error is None:
            self.batches_committed += 1
            self.ops_committed += 1
            _resolve(op, _Outcome(True, results[0]))
        else:
            self.ops_failed += 1
            if is_unavailable(error):
                error = _chain(unavailable(error), error)
            _resolve(op, _Outcome(False, error=error))
        return conn

    def _try_batch(
        self, conn: Connection | None, ops: Sequence[_Op]
    ) -> tuple[list[Any], int | None, BaseException | None, Connection | None]:
        """Run ``ops`` in one transaction. Returns (results, failing index, error, conn)."""
        results: list[Any] = []
        index: int | None = None
        try:
            if conn is None:
                conn = self._connect()
            with conn.begin():
                # The batch's status events are written together just before COMMIT
                # (store/events.py): one executemany instead of one INSERT each.
                begin_deferred(conn)
                for index, op in enumerate(ops):  # noqa: B007 (index read in except)
                    results.append(op.fn(conn))
                index = None  # past the ops: an error now comes from the events or COMMIT
                flush_deferred(conn)
            return results, None, None, conn
        except Exception as exc:
            if conn is not None:
                discard_deferred(conn)
            if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
                log.warning("store writer lost its connection, reconnecting: %s", exc)
            if conn is not None and (conn.invalidated or conn.closed or is_unavailable(exc)):
                conn = _discard(conn)  # reconnect on the next attempt
            return [], index, exc, conn


def _chain(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


def _discard(conn: Connection | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:
            log.debug("store writer: closing a broken connection failed", exc_info=True)


def _resolve(op: _Op, outcome: _Outcome) -> None:
    _resolve_all([(op, outcome)])


def _resolve_all(results: Sequence[tuple[_Op, _Outcome]]) -> None:
    """Tell a batch's callers, one hand-off per event loop (not one per op: each wakes the
    loop through its self-pipe, a system call and a GIL hand-over per op)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Op, _Outcome]]] = {}
    for op, outcome in results:
        by_loop.setdefault(op.loop, []).append((op, outcome))
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_deliver, items)
        except RuntimeError:
            # The callers' loop is closed; there is no one left to tell.
            log.debug("store writer: %d result(s) for a closed event loop dropped", len(items))


def _deliver(items: list[tuple[_Op, _Outcome]]) -> None:
    for op, outcome in items:
        if op.future.done():  # caller was cancelled
            continue
        if outcome.ok:
            op.future.set_result(outcome.value)
        else:
            assert outcome.error is not None
            op.future.set_exception(outcome.error)
