"""Send a message, read its status history, cancel it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field, field_validator

from gateway.api.deps import gateway
from store import outbound

if TYPE_CHECKING:
    from gateway.app import Gateway

router = APIRouter(prefix="/messages", tags=["messages"])
Gw = Annotated["Gateway", Depends(gateway)]

MAX_TEXT = 255 * 67  # the most a 255-part UCS2 message can carry


class SendRequest(BaseModel):
    to: str = Field(pattern=r"^\+?[0-9]{3,20}$", description="destination MSISDN")
    text: str = Field(min_length=1, max_length=MAX_TEXT)
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


class Queued(BaseModel):
    id: int
    status: str


@router.post("", status_code=202, response_model=Queued)
async def send(req: SendRequest, gw: Gw) -> Queued:
    """Queue one MT. It is on disk when this answers; delivery follows."""
    mt_id = await gw.enqueue(req.to.lstrip("+"), req.text, priority=req.priority,
                             schedule_at=req.schedule_at, expires_at=req.expires_at)
    return Queued(id=mt_id, status="queued")


@router.get("/{message_id}")
async def get(message_id: int, gw: Gw) -> dict[str, Any]:
    """A message with its parts and full status history."""
    found = await gw.store.read(lambda c: outbound.get_message(c, message_id))
    if found is None:
        raise HTTPException(404, {"code": "not_found", "message": f"no message {message_id}"})
    return found


@router.post("/{message_id}/cancel")
async def cancel(message_id: int, gw: Gw) -> dict[str, Any]:
    """Cancel a message that has not been submitted yet."""
    result = await gw.store.write(lambda c: outbound.cancel(c, message_id,
                                                            now=datetime.now(UTC)))
    outcome = getattr(result, "value", result)
    if outcome == "not_found":
        raise HTTPException(404, {"code": "not_found", "message": f"no message {message_id}"})
    if outcome == "too_late":
        raise HTTPException(409, {"code": "too_late",
                                  "message": "already submitted; it can no longer be cancelled"})
    return {"id": message_id, "status": "cancelled"}
