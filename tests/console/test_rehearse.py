"""`Store.rehearse` (the try-it box's transaction): nothing it writes is kept, on SQLite and
PostgreSQL, and on SQLite it cannot hold up the writer past its time limit."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.db import StoreUnavailable
from store.models import settings
from store.store import Store


def _get(c: Connection, key: str) -> str | None:
    return c.execute(sa.select(settings.c.value).where(settings.c.key == key)).scalar()


async def test_rehearsal_sees_its_writes_then_keeps_nothing(store: Store) -> None:
    def run(c: Connection) -> str | None:
        c.execute(settings.insert().values(key="rehearsed", value="yes"))
        return _get(c, "rehearsed")

    assert await store.rehearse(run) == "yes"  # visible inside the rehearsal
    assert await store.read(lambda c: _get(c, "rehearsed")) is None
    # The writer works normally afterwards (no lock, no option left on a pooled connection).
    await store.write(lambda c: c.execute(settings.insert().values(key="real", value="1")))
    assert await store.read(lambda c: _get(c, "real")) == "1"


async def test_rehearsal_error_rolls_back_too(store: Store) -> None:
    def run(c: Connection) -> None:
        c.execute(settings.insert().values(key="half", value="x"))
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await store.rehearse(run)
    assert await store.read(lambda c: _get(c, "half")) is None


async def test_sqlite_rehearsal_cannot_block_the_writer_long(tmp_path: object) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/r.db")  # type: ignore[str-bytes-safe]
    try:
        def endless(c: Connection) -> None:  # a runaway query inside the rehearsal
            c.execute(settings.insert().values(key="held", value="x"))
            c.exec_driver_sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                              "FROM n) SELECT count(*) FROM n").scalar()

        started = time.monotonic()
        rehearsal = asyncio.ensure_future(store.rehearse(endless, max_seconds=0.3))
        await asyncio.sleep(0.1)  # the rehearsal holds the write lock now
        await store.write(lambda c: c.execute(settings.insert().values(key="w", value="1")))
        waited = time.monotonic() - started
        with pytest.raises((sa.exc.OperationalError, StoreUnavailable)):
            await rehearsal
        assert waited < 2.0, waited  # the writer got through once the rehearsal was cut off
        assert await store.read(lambda c: (_get(c, "w"), _get(c, "held"))) == ("1", None)
    finally:
        await store.close()
