"""store/planner_stats.py and gateway/planner_stats.py: a table that filled up since it was
last analysed is analysed, and PostgreSQL then plans the receipt lookup with its index."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa

from gateway.planner_stats import PlannerStats
from store import planner_stats
from store.models import outbound_messages, outbound_parts
from store.store import Store
from tests.store.helpers import NOW

ROWS = 5000
# The receipt batch's lookup (store/receipts._FIND_PARTS), as PostgreSQL sees it.
LOOKUP = ("SELECT p.id FROM outbound_parts p JOIN outbound_messages m ON m.id = p.message_id "
          "WHERE p.smsc_message_id IN ({})".format(", ".join(f"'s{i}'" for i in range(16))))


def _fill(conn: sa.Connection) -> None:
    conn.execute(outbound_messages.insert(), [
        {"id": i, "priority": 2, "dest_addr": f"86138{i:08d}", "text": "t", "status": "submitted",
         "created_at": NOW, "updated_at": NOW, "parts": 1} for i in range(1, ROWS + 1)])
    conn.execute(outbound_parts.insert(), [
        {"message_id": i, "part_no": 1, "smsc_message_id": f"s{i}", "status": "submitted",
         "submitted_at": NOW} for i in range(1, ROWS + 1)])


def _plan(conn: sa.Connection) -> str:
    return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + LOOKUP))


def _last_analyze(conn: sa.Connection, table: str) -> object:
    return conn.execute(sa.text(
        "SELECT last_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema() "
        "AND relname = :t"), {"t": table}).scalar_one()


async def test_a_table_that_filled_up_is_analysed_once(store: Store) -> None:
    job = PlannerStats(store, interval=10.0)
    if store.dialect_name != "postgresql":  # nothing to do: SQLite's planner needs no stats
        assert not job.wanted
        assert store.run(planner_stats.stale_tables) == []
        return
    assert job.wanted and not PlannerStats(store, interval=0).wanted
    store.run(_fill)
    assert "Seq Scan on outbound_parts" in store.run(_plan)  # no statistics: 8 % a guess
    # Each backend reports its counts shortly after its transaction (about a second).
    deadline = time.monotonic() + 30
    while not {"outbound_parts", "outbound_messages"} <= {
            t.name for t in store.run(planner_stats.stale_tables)}:
        assert time.monotonic() < deadline, "table counts never reached pg_stat_user_tables"
        await asyncio.sleep(0.2)
    stale = {t.name: t for t in store.run(planner_stats.stale_tables)}
    assert stale["outbound_parts"].changed >= ROWS
    analysed = await job.tick()
    assert {"outbound_parts", "outbound_messages"} <= set(analysed)
    assert store.run(lambda c: _last_analyze(c, "outbound_parts")) is not None
    assert "Seq Scan on outbound_parts" not in store.run(_plan)
    assert "smsc_message_id" in store.run(_plan)  # the index, now that it knows the table
    # Analysed: nothing is stale until the table grows by half again.
    assert "outbound_parts" not in {t.name for t in store.run(planner_stats.stale_tables)}
    assert "outbound_parts" not in await job.tick()


async def test_a_table_locked_by_another_analyze_is_skipped_not_waited_on(store: Store) -> None:
    """Another instance analysing (or a VACUUM) holds the table: the job gives up on it after
    its lock timeout, says so, and analyses the rest."""
    if store.dialect_name != "postgresql":
        assert not PlannerStats(store).wanted
        return
    store.run(_fill)
    deadline = time.monotonic() + 30
    while "outbound_parts" not in {t.name for t in store.run(planner_stats.stale_tables)}:
        assert time.monotonic() < deadline, "table counts never reached pg_stat_user_tables"
        await asyncio.sleep(0.2)
    holder = store.engine.connect()
    tx = holder.begin()
    # The lock ANALYZE and VACUUM take: a second one waits for it.
    holder.exec_driver_sql("LOCK TABLE outbound_parts IN SHARE UPDATE EXCLUSIVE MODE")
    try:
        started = time.monotonic()
        analysed = await PlannerStats(store).tick()
        assert "outbound_parts" not in analysed and "outbound_messages" in analysed
        assert time.monotonic() - started < 10  # a lock timeout, not a wait for the holder
    finally:
        tx.rollback()
        holder.close()
    assert "outbound_parts" in {t.name for t in store.run(planner_stats.stale_tables)}
    assert "outbound_parts" in await PlannerStats(store).tick()  # next time it goes through
