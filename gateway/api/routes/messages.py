"""Send one or many messages, list them, read one with its status history, cancel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from gateway.api.common import Cursor, IdPath, Limit, Page, decode_cursor, page
from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError, not_found
from store import admin, outbound
from store.models import INBOUND_STATUSES, OUTBOUND_STATUSES

router = APIRouter(prefix="/messages", tags=["messages"])

MAX_TEXT = 255 * 67  # the most a 255-part UCS2 message can carry
MAX_BULK = 1000
MSISDN = r"^\+?[0-9]{3,20}$"
Msisdn = Annotated[str, Field(pattern=MSISDN, description="destination MSISDN")]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


class _Timing(BaseModel):
    priority: int = Field(default=2, ge=0, le=3,
                          description="0 alerts, 1 replies, 2 transactional, 3 bulk")
    schedule_at: datetime | None = None
    expires_at: datetime | None = None

    @field_validator("schedule_at", "expires_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("times need a timezone (e.g. 2026-11-24T09:00:00+08:00)")
        return v


class SendRequest(_Timing):
    to: Msisdn
    text: Text


class Queued(BaseModel):
    id: int
    status: str


class BulkItem(BaseModel):
    to: Msisdn
    text: Text


class BulkRequest(_Timing):
    """Either ``messages`` (each its own text) or ``to`` + ``text`` (one text to many)."""

    messages: list[BulkItem] | None = Field(default=None, max_length=MAX_BULK)
    to: list[Msisdn] | None = Field(default=None, max_length=MAX_BULK)
    text: Text | None = None

    @model_validator(mode="after")
    def _one_form(self) -> BulkRequest:
        if self.messages is not None:
            if self.to is not None or self.text is not None:
                raise ValueError("give messages, or to and text, not both")
            if not self.messages:
                raise ValueError("messages is empty")
        elif not self.to or self.text is None:
            raise ValueError("give messages, or to (a non-empty list) and text")
        return self

    def items(self) -> list[tuple[str, str]]:
        if self.messages is not None:
            return [(m.to, m.text) for m in self.messages]
        assert self.to is not None and self.text is not None
        return [(to, self.text) for to in self.to]


class BulkQueued(BaseModel):
    ids: list[int]
    status: str


@router.post("", status_code=202, response_model=Queued)
async def send(req: SendRequest, gw: Gw, actor: Caller) -> Queued:
    """Queue one MT. It is on disk when this answers; delivery follows."""
    mt_id = await gw.enqueue(req.to.lstrip("+"), req.text, priority=req.priority,
                             schedule_at=req.schedule_at, expires_at=req.expires_at)
    await gw.store.write(lambda c: actor.record(c, "message", mt_id,
                                                after=req.model_dump()))
    return Queued(id=mt_id, status="queued")


@router.post("/bulk", status_code=202, response_model=BulkQueued)
async def send_many(req: BulkRequest, gw: Gw, actor: Caller) -> BulkQueued:
    """Queue up to 1000 MTs: a list of {to, text}, or one text to a list of numbers.

    The writer commits them in a few group commits; ids come back in the order given.
    """
    items = req.items()
    ids = list(await asyncio.gather(*(
        gw.enqueue(to.lstrip("+"), text, priority=req.priority, schedule_at=req.schedule_at,
                   expires_at=req.expires_at) for to, text in items)))
    await gw.store.write(lambda c: actor.record(
        c, "message", f"bulk:{ids[0]}-{ids[-1]}",
        after={"count": len(ids), "ids": ids, "priority": req.priority,
               "schedule_at": req.schedule_at}))
    return BulkQueued(ids=ids, status="queued")


@router.get("", response_model=Page)
async def list_messages(
    gw: Gw, _: Caller, limit: Limit = 100, cursor: Cursor = None,
    direction: Annotated[Literal["in", "out"], Query(
        description="out: MTs (default), in: MOs")] = "out",
    phone: Annotated[str | None, Query(pattern=MSISDN,
                                       description="the handset: MT to / MO from")] = None,
    status: Annotated[str | None, Query(
        description=f"out: {', '.join(OUTBOUND_STATUSES)}; in: {', '.join(INBOUND_STATUSES)}",
        max_length=16)] = None,
    since: Annotated[AwareDatetime | None, Query(description="created at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="created before")] = None,
    connection: Annotated[str | None, Query(max_length=64)] = None,
) -> Page:
    """Messages of one direction, newest first, with cursor pagination."""
    before = decode_cursor(f"messages-{direction}", cursor)
    rows = await gw.store.read(lambda c: admin.list_messages(
        c, direction=direction, phone=phone, status=status, since=since, until=until,
        connection=connection, before_id=before, limit=limit + 1))
    return page(f"messages-{direction}", rows, limit)


@router.get("/{message_id}")
async def get(message_id: IdPath, gw: Gw, _: Caller) -> dict[str, Any]:
    """A message (MT) with its parts and full status history."""
    found = await gw.store.read(lambda c: outbound.get_message(c, message_id))
    if found is None:
        raise not_found("message", message_id)
    return found


@router.post("/{message_id}/cancel")
async def cancel(message_id: IdPath, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Cancel a message that has not been submitted yet."""

    def run(c: Any) -> str:
        result = outbound.cancel(c, message_id, now=datetime.now(UTC))
        outcome = str(getattr(result, "value", result))
        if outcome == "cancelled":
            actor.record(c, "message", message_id, before={"status": "queued"},
                         after={"status": "cancelled"})
        return outcome

    outcome = await gw.store.write(run)
    if outcome == "not_found":
        raise not_found("message", message_id)
    if outcome == "too_late":
        raise ApiError(409, "too_late", "already submitted; it can no longer be cancelled")
    return {"id": message_id, "status": "cancelled"}
