"""PostgreSQL: the planner's statistics of fast-growing tables, kept current.

Autovacuum analyses a table once about 10 % of it has changed, and looks at most once a
`autovacuum_naptime` (1 minute by default). A table that grows from nothing to tens of
thousands of rows within that minute — a fresh database taking its first broadcast, the parts
and events of a large send — is planned meanwhile with no statistics at all, and PostgreSQL's
default selectivity (0.5 % a value) makes ``outbound_parts.smsc_message_id IN (…16 ids…)``
look like 8 % of the table: every receipt batch then scans outbound_parts instead of using its
index. Measured here (benchmarks/outbound.py, 20,000 messages, fresh database): 517-595
msgs/s, receipts waiting on those scans; 1,331 msgs/s with the statistics current.

So the gateway analyses a table of its schema itself as soon as it has changed by half of its
size since its last analysis (at least `MIN_CHANGED` rows): a handful of ANALYZEs while a table
is young and growing fast (each one samples at most 30,000 rows), none once it is large and
autovacuum's own schedule is as good. SQLite needs none of this (its planner prefers indexes
without statistics).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

MIN_CHANGED = 1000  # rows changed before a table is worth analysing at all
GROWTH = 0.5  # ... and this share of its live rows

_CANDIDATES = sa.text("""
    SELECT relname, n_live_tup, n_mod_since_analyze
    FROM pg_stat_user_tables
    WHERE schemaname = current_schema()
      AND n_mod_since_analyze >= :min_changed
      AND n_mod_since_analyze >= :growth * n_live_tup
    ORDER BY n_mod_since_analyze DESC
""")


@dataclass(frozen=True, slots=True)
class StaleTable:
    name: str
    live_rows: int
    changed: int  # rows inserted, updated or deleted since the table was last analysed


def stale_tables(conn: Connection) -> list[StaleTable]:
    """This schema's tables whose statistics lag far behind their contents (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return []
    rows = conn.execute(_CANDIDATES, {"min_changed": MIN_CHANGED, "growth": GROWTH}).all()
    return [StaleTable(r.relname, int(r.n_live_tup), int(r.n_mod_since_analyze)) for r in rows]


def analyze(conn: Connection, table: str, *, lock_timeout_ms: int = 1000) -> None:
    """ANALYZE one table (PostgreSQL), giving up after ``lock_timeout_ms`` when another
    ANALYZE or a VACUUM holds it (another instance got there first: nothing is lost)."""
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
    conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.quote(table)}")
