"""Small helpers shared by the store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from store import inbound, outbound

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def mo(conn: Connection, key: str = "k1", *, connection: str = "smsc1", **kw: Any) -> int:
    values: dict[str, Any] = {
        "connection": connection,
        "dedup_key": key,
        "source_addr": "8613800000000",
        "dest_addr": "10086",
        "text": "ORDER 12 x3",
        "data_coding": 0,
        "esm_class": 0,
        "short_message": b"ORDER 12 x3",
        "now": NOW,
    }
    values.update(kw)
    return inbound.insert_mo(conn, **values)[0]


def mt(conn: Connection, *, priority: int = 2, now: datetime = NOW, **kw: Any) -> int:
    return outbound.enqueue_mt(
        conn,
        dest_addr=kw.pop("dest_addr", "8613800000001"),
        text="hi",
        priority=priority,
        now=now,
        **kw,
    )


def claim(
    conn: Connection, *, now: datetime = NOW, limit: int = 100, instance: str = "gw1",
    compiled: bool = False,
) -> list[int]:
    """``compiled``: the dispatcher's one-statement claim (a routing filter key given)."""
    rows = outbound.claim_batch(conn, instance=instance, connection="smsc1", now=now, limit=limit,
                                where_key="all" if compiled else None)
    return [r.id for r in rows]
