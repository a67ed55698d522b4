"""Service numbers (gateway/numbers.py): the configured ones, with traffic by number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query

from gateway.api.deps import Caller, Gw
from store.models import inbound_messages as mo
from store.models import outbound_messages as msg

router = APIRouter(prefix="/numbers", tags=["numbers"])


@router.get("")
async def list_numbers(gw: Gw, _: Caller, days: Annotated[int, Query(ge=1, le=366)] = 7
                       ) -> list[dict[str, Any]]:
    """Each service number with its MOs received and MTs sent over the last ``days``.
    An MO counts for the longest number its destination starts with."""
    plan = getattr(getattr(gw, "processor", None), "numbers", None)
    configured = ([(n.number, n.name, n.language,
                    sorted(n.keywords) if n.keywords is not None else None)
                   for n in plan.numbers] if plan is not None
                  else [(gw.settings.source_addr, None, None, None)])
    since = datetime.now(UTC) - timedelta(days=days)

    def run(c: Any) -> tuple[list[Any], list[Any]]:
        ins = c.execute(sa.select(mo.c.dest_addr, sa.func.count()).where(
            mo.c.received_at >= since, mo.c.duplicate_of.is_(None)).group_by(mo.c.dest_addr))
        outs = c.execute(sa.select(msg.c.source_addr, sa.func.count()).where(
            msg.c.created_at >= since).group_by(msg.c.source_addr))
        return list(ins), list(outs)

    ins, outs = await gw.store.read(run)
    longest = sorted((n[0] for n in configured), key=len, reverse=True)

    def owner(addr: str | None) -> str | None:
        a = (addr or "").removeprefix("+")
        return next((n for n in longest if a.startswith(n)), None)

    counts = {n[0]: {"mo": 0, "mt": 0} for n in configured}
    for addr, count in ins:
        if (n := owner(addr)) is not None:
            counts[n]["mo"] += int(count)
    for addr, count in outs:
        if (n := owner(addr)) is not None:
            counts[n]["mt"] += int(count)
    return [{"number": number, "name": name, "language": lang, "keywords": words,
             "mo_received": counts[number]["mo"], "mt_sent": counts[number]["mt"]}
            for number, name, lang, words in configured]
