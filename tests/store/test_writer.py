from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store import Store, StoreUnavailable
from store.models import outbound_messages
from tests.store.helpers import mt


def _count(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(outbound_messages)).scalar_one()


async def test_group_commit_200_concurrent_writes(store: Store) -> None:
    before = store.writer.batches_committed
    ids = await asyncio.gather(*(store.write(lambda c: mt(c)) for _ in range(200)))
    assert len(set(ids)) == 200
    assert await store.read(_count) == 200
    batches = store.writer.batches_committed - before
    # All 200 were queued before the thread could drain them one by one.
    assert 1 <= batches < 200
    assert store.writer.ops_committed >= 200


async def test_failing_op_fails_only_its_caller(store: Store) -> None:
    def boom(conn: Connection) -> int:
        mt(conn)  # its own insert must be rolled back with it
        raise RuntimeError("bad op")

    def bad_sql(conn: Connection) -> int:
        # A database error aborts the whole transaction on PostgreSQL.
        return conn.execute(sa.text("SELECT * FROM no_such_table")).scalar_one()

    ops = [lambda c: mt(c) for _ in range(20)]
    ops[5] = boom
    ops[12] = bad_sql
    results = await asyncio.gather(*(store.write(op) for op in ops), return_exceptions=True)
    assert isinstance(results[5], RuntimeError)
    assert isinstance(results[12], sa.exc.DBAPIError)
    good = [r for i, r in enumerate(results) if i not in (5, 12)]
    assert all(isinstance(r, int) for r in good)
    assert await store.read(_count) == 18
    assert store.writer.ops_failed == 2
    # The writer is still healthy afterwards.
    assert isinstance(await store.write(lambda c: mt(c)), int)


async def test_urgent_write_overtakes_queued_work(store: Store) -> None:
    """An acknowledgement's write (urgent) goes into the next batch however much background
    work is queued ahead of it; the background work still all commits, in its own order."""
    release = threading.Event()
    order: list[str] = []

    def hold(conn: Connection) -> None:  # keeps the writer busy while the queue fills
        release.wait(10)

    def note(name: str):  # type: ignore[no-untyped-def]
        def op(conn: Connection) -> int:
            order.append(name)
            return mt(conn)
        return op

    held = asyncio.ensure_future(store.write(hold))
    await asyncio.sleep(0.05)  # the writer thread is inside hold() now
    background = [asyncio.ensure_future(store.write(note(f"bg{i}"))) for i in range(1200)]
    ack = asyncio.ensure_future(store.write(note("ack"), urgent=True))
    await asyncio.sleep(0)  # every write() has queued its op
    batches = store.writer.batches_committed
    release.set()
    await ack
    # Committed in the first batch after hold()'s: ahead of 1,200 queued ops (500 a batch).
    assert store.writer.batches_committed - batches <= 2
    assert order[0] == "ack"
    await asyncio.gather(held, *background)
    assert order[1:] == [f"bg{i}" for i in range(1200)]
    assert await store.read(_count) == 1201


async def test_a_flood_of_urgent_writes_leaves_room_for_the_rest(store: Store) -> None:
    """Even with more urgent ops queued than a batch holds, each batch keeps a tenth of its
    room for the background work: MO processing goes on under a flood of acknowledgements."""
    release = threading.Event()
    order: list[str] = []

    def note(name: str):  # type: ignore[no-untyped-def]
        def op(conn: Connection) -> None:
            order.append(name)
        return op

    held = asyncio.ensure_future(store.write(lambda c: release.wait(10)))
    await asyncio.sleep(0.05)
    background = [asyncio.ensure_future(store.write(note("bg"))) for _ in range(100)]
    acks = [asyncio.ensure_future(store.write(note("ack"), urgent=True)) for _ in range(1000)]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(held, *background, *acks)
    first_batch = order[:500]  # DEFAULT_MAX_BATCH
    assert first_batch.count("ack") == 450 and first_batch.count("bg") == 50
    assert order[500:1000].count("bg") == 50  # the rest of the background work next


async def test_close_drains_queue(db_url: str) -> None:
    s = Store.open(db_url)
    futures = [asyncio.ensure_future(s.write(lambda c: mt(c))) for _ in range(50)]
    await asyncio.sleep(0)  # let every write() enqueue
    await s.close()
    assert all(f.done() and not f.exception() for f in futures)
    s2 = Store.open(db_url)
    try:
        assert s2.run(_count) == 50
    finally:
        await s2.close()
    with pytest.raises(RuntimeError):
        await s.write(lambda c: mt(c))


async def test_run_and_read(store: Store) -> None:
    new_id = store.run(lambda c: mt(c))
    assert await store.read(lambda c: _count(c)) == 1
    assert isinstance(new_id, int)
    assert store.dialect_name in ("sqlite", "postgresql")


async def test_unreachable_database_fails_callers_instead_of_hanging() -> None:
    s = Store("postgresql://postgres@127.0.0.1:1/nowhere")  # nothing listens on port 1
    s.start()
    try:
        with pytest.raises(StoreUnavailable, match="database unavailable") as err:
            await asyncio.wait_for(s.write(lambda c: 1), 10)
        assert isinstance(err.value.__cause__, sa.exc.OperationalError)
        assert s.writer.running  # and the thread survives to try again
    finally:
        await s.close()
