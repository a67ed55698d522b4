"""Events from other systems (a payment received, a process stage reached): stored durably;
the notice processor turns each into the notices configured for its type.

An event is checked when it is posted, by the processor's own planning step
(`gateway.notices.events.plan_notices`): an unknown type or account, no recipient, or a
payload field its template needs but lacks is a 422 with the reason, not a 202 that fails
in the log. `GET /events/{id}` tells what became of it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from gateway.api.common import IdPath
from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError, not_found
from gateway.notices.events import NoticeContext, NoticeError, plan_notices
from store import notices as sn
from store.models import events, outbound_messages

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


class EventFate(BaseModel):
    id: int
    type: str
    payload: dict[str, Any]
    created_at: datetime
    status: str = Field(description="pending (not processed yet), processed (its notices "
                                    "queued), or failed (see error)")
    processed_at: datetime | None
    error: str | None = Field(description="why it produced no notice (status failed)")
    notices: list[dict[str, Any]] = Field(description="the MTs it produced: id, to, status")


def notice_context(gw: Any) -> NoticeContext | None:
    """The running notice service's context, else one from the notice configuration; None
    when neither can be had (then only the event's shape is checked)."""
    ctx = getattr(getattr(gw, "notices", None), "ctx", None)
    if ctx is not None:
        return ctx  # type: ignore[no-any-return]
    try:
        from gateway.notices.config import load_config

        return NoticeContext(load_config(getattr(gw.settings, "notices_file", None)))
    except Exception:
        return None


def known_event_types(gw: Any) -> frozenset[str] | None:
    """The event types the notice configuration knows, or None when it cannot be had (then
    any well-formed type is accepted)."""
    ctx = notice_context(gw)
    found = ctx.config.events if ctx is not None else None
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
    """Accept an event (202: stored; its notices follow, see `GET /events/{id}`).

    422 when it could only fail: an unknown type, an account (account_no / account_id) that
    does not exist, no recipient with a phone, or a payload field its template needs.
    """
    known = known_event_types(gw)
    if known is not None and body.type not in known:
        raise ApiError(422, "unknown_event_type",
                       f"unknown event type {body.type!r} (one of {', '.join(sorted(known))})")
    if not _TYPE.match(body.type):  # pragma: no cover - the model checks it first
        raise ApiError(422, "validation_error", "bad event type")
    payload = body.payload
    if len(json.dumps(payload, default=str)) > 64 * 1024:
        raise ApiError(413, "payload_too_large", "event payload over 64 KiB")

    ctx = notice_context(gw)
    if ctx is not None:
        def check(c: Connection) -> None:
            try:
                plan_notices(c, body.type, payload, ctx=ctx)
            except NoticeError as exc:
                raise ApiError(422, "invalid_event", str(exc)) from None

        await gw.store.read(check)

    def run(c: Connection) -> int:
        event_id = insert_event(c, body.type, payload, datetime.now(UTC))
        actor.record(c, "event", event_id, after={"type": body.type, "payload": payload})
        return event_id

    event_id = await gw.store.write(run)
    wake_processor(gw)
    return EventAccepted(id=event_id, type=body.type)


@router.get("/{event_id}", response_model=EventFate)
async def get_event(event_id: IdPath, gw: Gw, _: Caller) -> EventFate:
    """What became of an event: pending, processed with the notices it produced, or failed
    with the error (fix the cause, then the event can be retried)."""

    def run(c: Connection) -> EventFate | None:
        found = sn.get_event(c, event_id)
        if found is None:
            return None
        om = outbound_messages.c
        ids = found["notice_ids"]
        notices = [dict(r) for r in c.execute(
            sa.select(om.id, om.dest_addr.label("to"), om.status)
            .where(om.id.in_(ids)).order_by(om.id)).mappings()] if ids else []
        status = "pending" if found["processed_at"] is None else \
            "failed" if found["error"] else "processed"
        return EventFate(id=found["id"], type=found["type"], payload=found["payload"],
                         created_at=found["created_at"], status=status,
                         processed_at=found["processed_at"], error=found["error"],
                         notices=notices)

    fate = await gw.store.read(run)
    if fate is None:
        raise not_found("event", event_id)
    return fate
