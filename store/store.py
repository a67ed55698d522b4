"""`Store`: the engine, the group-commit writer and a small read pool behind one object."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    WRITE_OPTION,
    StoreUnavailable,
    default_database_url,
    is_unavailable,
    make_engine,
    unavailable,
)
from store.writer import DEFAULT_MAX_BATCH, GroupCommitWriter

log = logging.getLogger("smsgw.store")

T = TypeVar("T")

# `write_until_done` backs off up to this long between attempts while the database is down.
RETRY_MAX_PAUSE = 2.0

# Reads (API queries, exports) run beside the writer; a few threads are enough, and bounding
# them keeps a burst of API reads from exhausting the connection pool the writer also uses.
READ_THREADS = 4

# `rehearse` gives up after this long (waiting for the database's write lock, or running):
# a preview must never hold up the writer for more.
REHEARSAL_SECONDS = 2.0


class Store:
    """The persistence layer as the rest of the gateway sees it.

    ``write`` for everything on the hot path (group-committed, one writer thread), ``read``
    for queries from async code, ``run`` for blocking callers (CLI, tests, start-up).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.url = url or default_database_url()
        self.engine: sa.Engine = make_engine(self.url, **(engine_kwargs or {}))
        self.writer = GroupCommitWriter(self.engine, max_batch=max_batch)
        self._read_pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="smsgw-store-read")

    @classmethod
    def open(cls, url: str | None = None, *, upgrade: bool = True, **kwargs: Any) -> Store:
        """Create a Store, bring the schema to head (idempotent) and start the writer."""
        store = cls(url, **kwargs)
        try:
            if upgrade:
                from store.migrate import upgrade_engine

                upgrade_engine(store.engine)
        except BaseException:
            store._read_pool.shutdown(wait=False)
            store.engine.dispose()
            raise
        store.start()
        return store

    @property
    def dialect_name(self) -> str:
        return self.engine.dialect.name

    def start(self) -> None:
        self.writer.start()

    async def close(self) -> None:
        """Drain and stop the writer, then release every connection."""
        await self.writer.close()
        await asyncio.to_thread(self._read_pool.shutdown, wait=True)
        self.engine.dispose()

    async def __aenter__(self) -> Store:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def write(self, fn: Callable[[Connection], T], *, urgent: bool = False) -> T:
        """Run ``fn(conn)`` in the writer's next group-committed transaction.

        ``urgent``: a peer waits on this commit to be acknowledged (store/writer.py): it goes
        ahead of queued background work."""
        return await self.writer.write(fn, urgent=urgent)

    async def write_until_done(self, fn: Callable[[Connection], T], *, what: str) -> T:
        """``write``, retried through a database outage (StoreUnavailable) until it commits.

        For facts that must not be dropped because the database is briefly away: an SMSC
        accepted a part, a claimed message goes back to the queue, an MO's outcome. ``fn``
        must be safe to run again (the failed attempt was not committed). Cancellation (a
        stop) ends the wait; what was not recorded is then recovered at the next start.
        """
        pause, warned = 0.05, False
        while True:
            try:
                result = await self.write(fn)
            except StoreUnavailable as exc:
                if not warned:
                    log.warning("%s waits for the database: %s", what, exc)
                    warned = True
                await asyncio.sleep(pause)
                pause = min(RETRY_MAX_PAUSE, pause * 2)
                continue
            if warned:
                log.info("%s recorded: the database is back", what)
            return result

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in its own read transaction on a pool thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._read_sync, fn)

    def _read_sync(self, fn: Callable[[Connection], T]) -> T:
        try:
            with self.engine.connect() as conn, conn.begin():
                return fn(conn)
        except Exception as exc:
            if is_unavailable(exc):
                raise unavailable(exc) from exc
            raise

    async def rehearse(self, fn: Callable[[Connection], T], *,
                       max_seconds: float = REHEARSAL_SECONDS) -> T:
        """Run ``fn(conn)`` in a transaction that is always rolled back: "what would this do"
        without doing it (the console's try-it box). Nothing ``fn`` writes is ever committed.

        It runs on a read-pool thread, never in the writer's batch. On SQLite it takes the
        write lock up front (BEGIN IMMEDIATE, as the writer does: a deferred transaction that
        writes after the writer committed would fail on its stale snapshot) and both the wait
        for that lock and the run itself are bounded by ``max_seconds`` (the run is aborted
        past it), so the writer waits at most that long. On PostgreSQL, row locks taken by
        ``fn`` are bounded by a statement and lock timeout of the same length.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._rehearse_sync, fn,
                                          max_seconds)

    def _rehearse_sync(self, fn: Callable[[Connection], T], max_seconds: float) -> T:
        millis = max(1, int(max_seconds * 1000))
        try:
            with self.engine.connect() as conn:
                if self.dialect_name != "sqlite":
                    with conn.begin() as trans:
                        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {millis}")
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {millis}")
                        try:
                            return fn(conn)
                        finally:
                            trans.rollback()
                raw = conn.connection.driver_connection
                raw.execute(f"PRAGMA busy_timeout={millis}")
                deadline = [float("inf")]
                # Called every 1000 SQLite VM steps: a non-zero answer aborts the statement.
                raw.set_progress_handler(lambda: int(time.monotonic() > deadline[0]), 1000)
                try:
                    writing = conn.execution_options(**{WRITE_OPTION: True})
                    with writing.begin() as trans:
                        deadline[0] = time.monotonic() + max_seconds
                        try:
                            return fn(writing)
                        finally:
                            trans.rollback()
                finally:
                    raw.set_progress_handler(None, 0)
                    raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        except Exception as exc:
            if is_unavailable(exc):
                raise unavailable(exc) from exc
            raise

    def run(self, fn: Callable[[Connection], T]) -> T:
        """Blocking: run ``fn(conn)`` in its own write transaction and commit it."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                return fn(conn)
