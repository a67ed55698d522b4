"""No statement of the message path scans a table that grows with traffic.

A full scan is invisible in a short test and in a benchmark on a fresh database, and then
makes every message cost more the longer the gateway runs (the 30-minute soak found one:
masking a PIN also updated `duplicate_of = id` with no index, a scan of every MO ever
received). This test drives the realistic MO mix (orders with PINs, reports, queries, HELP,
garbage, long messages; replies submitted and receipts matched) through the gateway and the
simulator, collects every distinct statement the gateway ran meanwhile, and asks SQLite for
each one's plan: only the small tables listed below may be scanned.

SQLite's planner, with no ANALYZE statistics, assumes every table is large, so its plan
shows which index a statement can use. PostgreSQL would pick a sequential scan on the tiny
tables of a test run whatever the indexes, so the check runs on SQLite; the indexes come
from the same migrations for both.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from store import fastsql

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from e2e import Harness

# Tables whose size does not grow with messages, each with why a scan is fine.
MAY_SCAN = {
    "rules": "the operator's rules, a few dozen; read into a cache when they change",
    "engagements": "polls and surveys, a few per week; read for an unrecognised text",
    "broadcasts": "the broadcasts, read once a second for due ones",
    "pending_receipts": "receipts that came before their submit_sm_resp, seconds at most",
}
_SCAN = re.compile(r"^SCAN (\w+)")


def growing_scans(steps: list[str]) -> list[str]:
    """The plan steps that walk a whole table (or a whole index of it) not in MAY_SCAN."""
    return [s for s in steps if (m := _SCAN.match(s)) and m.group(1) not in MAY_SCAN]


async def test_the_message_path_scans_no_growing_table(tmp_path: Path) -> None:
    seen: set[str] = set()
    capturing = [False]

    def fast(sql: str, _many: bool) -> None:
        if capturing[0]:
            seen.add(sql)

    def core(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if capturing[0]:
            seen.add(statement)

    db = tmp_path / "plans.db"
    harness = Harness(f"sqlite:///{db}", sim_process=False, window=50, accounts=20,
                      seed_accounts=True)
    fastsql.OBSERVERS.append(fast)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", core)
    try:
        await harness.start()
        capturing[0] = True
        result = await harness.drive(mode="mix", count=200, rate=200, pin_share=0.3,
                                     accounts=20, seed=7, settle=1.0, timeout=60,
                                     progress=False)
        capturing[0] = False
    finally:
        capturing[0] = False
        await harness.stop()
        fastsql.OBSERVERS.remove(fast)
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", core)
    assert result["missing"] == 0 and result["replies"] >= 200  # the path really ran

    plans = sqlite3.connect(db)
    scans: dict[str, list[str]] = {}
    explained = 0
    for sql in seen:
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT",
                                                "WITH")):
            continue  # BEGIN, COMMIT, PRAGMA
        steps = [row[3] for row in plans.execute(
            "EXPLAIN QUERY PLAN " + sql, [None] * sql.count("?")).fetchall()]
        explained += 1
        bad = growing_scans(steps)
        if bad:
            scans[" ".join(sql.split())[:300]] = bad
    plans.close()
    assert explained > 40, f"only {explained} statements seen: the capture is broken"
    assert not scans, "full scans on the message path:\n" + "\n".join(
        f"{steps}: {sql}" for sql, steps in scans.items())


@pytest.mark.parametrize("steps, allowed", [
    (["SCAN inbound_messages"], False),
    (["SCAN inbound_messages USING INDEX ix_x"], False),  # a whole index walked: still O(n)
    (["SEARCH inbound_messages USING INDEX ix_x (duplicate_of=?)"], True),
    (["SCAN rules"], True),
])
def test_the_scan_check_itself(steps: list[str], allowed: bool) -> None:
    assert (not growing_scans(steps)) is allowed
