"""Message statistics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from gateway.api.deps import Caller, Gw
from store import admin

router = APIRouter(prefix="/stats", tags=["statistics"])


@router.get("")
async def statistics(gw: Gw, _: Caller,
                     since: Annotated[AwareDatetime | None, Query()] = None,
                     until: Annotated[AwareDatetime | None, Query()] = None) -> dict[str, Any]:
    """Counts by direction, status, connection, MO command and day (UTC), over [since,
    until) when given. Live gauges (queue depth, binds, latency) are at /metrics."""
    return await gw.store.read(lambda c: admin.statistics(c, since=since, until=until))
