"""Broadcasts: one text to a group, a segment, a topic's subscribers or a list of numbers,
now or at a time (opt-outs and recipients' windows honoured by the notices service)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from gateway.api.common import IdPath
from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError, not_found
from gateway.mt_text import MtText
from gateway.notices.broadcasts import InvalidTarget, create_checked

router = APIRouter(prefix="/broadcasts", tags=["broadcasts"])


def _impl() -> Any:
    """store.notices' broadcast functions (the notices work), or 501 while it is missing."""
    try:
        from store import notices
    except ImportError:
        notices = None
    if notices is None or not all(hasattr(notices, f) for f in (
            "create_broadcast", "get_broadcast", "cancel_broadcast", "list_broadcasts")):
        raise ApiError(501, "not_implemented", "broadcasts are not available in this build")
    return notices


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    target_kind: Literal["group", "segment", "topic", "list"]
    target: str | list[str] | dict[str, Any] = \
        Field(description="group: name; topic: code; list: phone numbers (each checked, bad "
                          "ones listed in the 422's details as {index, to, reason}); segment: "
                          "{region|role|route|value_band: value or [values]}")
    text: MtText
    priority: int = Field(default=3, ge=0, le=3)
    schedule_at: AwareDatetime | None = Field(default=None, description="omit for now")
    service_number: str | None = Field(
        default=None, max_length=32,
        description="the number it goes out from: one of GET /numbers (SMSGW_NUMBERS_FILE); "
                    "omit for the default number")


def _service_numbers(gw: Any) -> list[str]:
    """The numbers a broadcast may go out from: the configured service numbers, or the one
    default number without a numbers file."""
    plan = getattr(getattr(gw, "processor", None), "numbers", None)
    if plan is not None:
        return [n.number for n in plan.numbers]
    return [gw.settings.source_addr]


def _wake(gw: Any) -> None:
    wake = getattr(getattr(getattr(gw, "notices", None), "broadcasts", None), "wake", None)
    if callable(wake):
        wake()


@router.get("")
async def list_broadcasts(gw: Gw, _: Caller,
                          limit: Annotated[int, Query(ge=1, le=500)] = 50
                          ) -> list[dict[str, Any]]:
    sn = _impl()
    return await gw.store.read(lambda c: sn.list_broadcasts(c, limit=limit))


@router.post("", status_code=201, responses={501: {"description": "not in this build"}})
async def create_broadcast(body: BroadcastIn, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Create a broadcast; it is queued at ``schedule_at`` (or at once) by the gateway.

    ``service_number`` must be a configured service number (422 lists them); its messages
    go out from it. Its target is checked now: an unknown group or topic, an empty or
    unknown segment filter, or a list with numbers that are not phone numbers is a 422 with
    the reason (bad numbers each in ``error.details`` as ``{index, to, reason}``). Should it
    still fail when it runs (the group deleted meanwhile), it ends ``cancelled`` with the
    reason in ``error``.
    """
    sn = _impl()
    numbers = _service_numbers(gw)

    def run(c: Connection) -> dict[str, Any]:
        try:
            bid = create_checked(
                c, name=body.name, target_kind=body.target_kind, target=body.target,
                text=body.text, now=datetime.now(UTC), priority=body.priority,
                schedule_at=body.schedule_at, created_by=actor.name[:64],
                service_number=body.service_number, configured_numbers=numbers)
        except InvalidTarget as exc:
            raise ApiError(422, "invalid_broadcast", str(exc), exc.details) from None
        except ValueError as exc:
            raise ApiError(422, "invalid_broadcast", str(exc)) from None
        after = sn.get_broadcast(c, bid)
        actor.record(c, "broadcast", bid, after=after)
        return after

    created = await gw.store.write(run)
    _wake(gw)
    return created


@router.get("/{broadcast_id}")
async def get_broadcast(broadcast_id: IdPath, gw: Gw, _: Caller) -> dict[str, Any]:
    """The broadcast with its progress and its messages counted by status."""
    sn = _impl()
    found = await gw.store.read(lambda c: sn.get_broadcast(c, broadcast_id))
    if found is None:
        raise not_found("broadcast", broadcast_id)
    return found


@router.post("/{broadcast_id}/cancel")
async def cancel_broadcast(broadcast_id: IdPath, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Cancel it and every message of it not yet claimed for sending."""
    sn = _impl()

    def run(c: Connection) -> dict[str, Any]:
        before = sn.get_broadcast(c, broadcast_id)
        if before is None:
            raise not_found("broadcast", broadcast_id)
        result = sn.cancel_broadcast(c, broadcast_id, now=datetime.now(UTC))
        actor.record(c, "broadcast", broadcast_id, before=before,
                     after=sn.get_broadcast(c, broadcast_id))
        return {"id": broadcast_id, **result}

    return await gw.store.write(run)
