"""SMSC connections: bind state, window in use, send rate and errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter

from gateway.api.deps import Caller, Gw
from store import admin

router = APIRouter(prefix="/connections", tags=["connections"])

RATE_WINDOW = 60  # seconds the send rate is averaged over
ERROR_WINDOW = 3600


def _clients(gw: Any) -> list[Any]:
    """The gateway's ESME clients: a multi-connection list when the gateway has one, else the
    single ``gateway.client``."""
    many = getattr(gw, "clients", None)
    if isinstance(many, dict):
        return list(many.values())
    if isinstance(many, list | tuple) and many:
        return list(many)
    client = getattr(gw, "client", None)
    return [client] if client is not None else []


def _status(client: Any, activity: dict[str, dict[str, int]]) -> dict[str, Any]:
    ep = client.endpoint
    conn = getattr(client, "connection", None)
    session = getattr(conn, "session", None) if conn is not None else None
    bound = bool(client.bound)
    counts = activity.get(ep.name, {"submitted": 0, "errors": 0})
    return {
        "name": ep.name,
        "host": ep.host,
        "port": ep.port,
        "system_id": ep.system_id,
        "bound": bound,
        "binds": getattr(client, "binds", 0),
        "window": getattr(getattr(client, "session_config", None), "window", None),
        "window_in_use": session.outstanding if bound and session is not None else 0,
        "send_rate": round(counts["submitted"] / RATE_WINDOW, 3),
        "errors_last_hour": counts["errors"],
        "last_error": getattr(client, "last_error", "") or None,
    }


@router.get("")
async def list_connections(gw: Gw, _: Caller) -> list[dict[str, Any]]:
    """One entry per SMSC bind. ``send_rate``: MTs submitted per second over the last
    minute; ``errors_last_hour``: MTs failed or rejected on it in the last hour."""
    now = datetime.now(UTC)
    rate = await gw.store.read(lambda c: admin.connection_activity(
        c, since=now - timedelta(seconds=RATE_WINDOW)))
    errs = await gw.store.read(lambda c: admin.connection_activity(
        c, since=now - timedelta(seconds=ERROR_WINDOW)))
    merged = {name: {"submitted": rate.get(name, {}).get("submitted", 0),
                     "errors": errs[name]["errors"]} for name in errs}
    return [_status(client, merged) for client in _clients(gw)]
