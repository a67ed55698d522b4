"""The job that keeps PostgreSQL's planner statistics current (store/planner_stats.py says
why): every `interval` seconds it looks for tables that grew by half since their last
analysis and analyses them, one log line each. Off on SQLite."""

from __future__ import annotations

import logging

from gateway.periodic import Periodic
from store import planner_stats
from store.db import StoreUnavailable
from store.store import Store

log = logging.getLogger("smsgw.store")


class PlannerStats(Periodic):
    name = "planner-stats"
    log = log

    def __init__(self, store: Store, *, interval: float = 5.0) -> None:
        self.store = store
        self.interval = interval

    @property
    def wanted(self) -> bool:
        return self.store.dialect_name == "postgresql" and self.interval > 0

    async def tick(self) -> list[str]:
        """One look; returns the tables analysed."""
        stale = await self.store.read(planner_stats.stale_tables)
        done: list[str] = []
        for table in stale:
            try:
                # A read-pool connection: ANALYZE writes only the catalogue, never our rows,
                # and must not hold up the writer's group commits.
                await self.store.read(lambda c, t=table.name: planner_stats.analyze(c, t))
            except StoreUnavailable as exc:
                if "lock timeout" not in str(exc.__cause__):
                    raise  # the database is away: the next tick tries again
                log.info("table %s: statistics not refreshed now (another ANALYZE or VACUUM "
                         "holds it)", table.name)
                continue
            log.info("table %s: statistics refreshed (%d rows, %d changed since the last "
                     "analysis)", table.name, table.live_rows, table.changed)
            done.append(table.name)
        return done
