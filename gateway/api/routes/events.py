"""Events from other systems (a payment received, a process stage reached): stored durably;
the notice processor turns each into the notices configured for its type."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError
from store.models import events

router = APIRouter(prefix="/events", tags=["events"])

TYPE_PATTERN = r"^[a-z_]+(\.[a-z_]+)+$"
_TYPE = re.compile(TYPE_PATTERN)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(max_length=64, pattern=TYPE_PATTERN, examples=["payment.received"])
    payload: dict[str, Any] = Field(default_factory=dict,
                                    examples=[{"account_no": "R1001", "amount": "500.00"}])


class EventAccepted(BaseModel):
    id: int
    type: str
    status: str = "accepted"


def known_event_types(gw: Any) -> frozenset[str] | None:
    """The event types the notice configuration knows, or None when it cannot be had (then
    any well-formed type is accepted)."""
    notices = getattr(gw, "notices", None)
    config = getattr(notices, "config", None)
    if config is None:
        try:
            from gateway.notices.config import load_config
        except ImportError:
            return None
        try:
            config = load_config(getattr(gw.settings, "notices_file", None))
        except Exception:
            return None
    found = getattr(config, "events", None)
    return frozenset(found) if found else None


def insert_event(conn: Connection, type_: str, payload: dict[str, Any], now: datetime) -> int:
    try:
        from store.notices import raise_event
    except ImportError:
        return int(conn.execute(events.insert().values(
            type=type_, payload=json.dumps(payload, default=str, ensure_ascii=False),
            created_at=now).returning(events.c.id)).scalar_one())
    return raise_event(conn, type_, payload, now)


def wake_processor(gw: Any) -> None:
    wake = getattr(getattr(getattr(gw, "notices", None), "events", None), "wake", None)
    if callable(wake):
        wake()


@router.post("", status_code=202, response_model=EventAccepted)
async def raise_event(body: EventIn, gw: Gw, actor: Caller) -> EventAccepted:
    """Accept an event (202: stored; its notices follow)."""
    known = known_event_types(gw)
    if known is not None and body.type not in known:
        raise ApiError(422, "unknown_event_type",
                       f"unknown event type {body.type!r} (one of {', '.join(sorted(known))})")
    if not _TYPE.match(body.type):  # pragma: no cover - the model checks it first
        raise ApiError(422, "validation_error", "bad event type")
    payload = body.payload
    if len(json.dumps(payload, default=str)) > 64 * 1024:
        raise ApiError(413, "payload_too_large", "event payload over 64 KiB")

    def run(c: Connection) -> int:
        event_id = insert_event(c, body.type, payload, datetime.now(UTC))
        actor.record(c, "event", event_id, after={"type": body.type, "payload": payload})
        return event_id

    event_id = await gw.store.write(run)
    wake_processor(gw)
    return EventAccepted(id=event_id, type=body.type)
