"""Send one or many messages, list them, read one with its status history, cancel."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Response
from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import Connection

from common.phones import Msisdn, canonical
from gateway.api.common import Cursor, IdPath, Limit, Page, decode_cursor, page
from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError, not_found
from gateway.api.idempotency import Claim, IdempotencyKey, KeyInUse, Replay, in_use
from gateway.mt_text import DEFAULT_MAX_PARTS, MAX_PARTS_ENV, MtText, mt_text
from store import admin, outbound, webhooks
from store.models import INBOUND_STATUSES, OUTBOUND_STATUSES

router = APIRouter(prefix="/messages", tags=["messages"])
log = logging.getLogger("smsgw")  # the message log lines, as gateway.app writes them

T = TypeVar("T")
MAX_BULK = 1000
MSISDN = r"^\+?[0-9]{3,20}$"  # the `phone` filter of the listing (a lookup, not a send)


class _Timing(BaseModel):
    priority: int = Field(default=2, ge=0, le=3,
                          description="0 alerts, 1 replies, 2 transactional, 3 bulk")
    schedule_at: datetime | None = None
    expires_at: datetime | None = None
    callback_url: HttpUrl | None = Field(
        default=None, description="POSTed the final state (docs/webhooks.md); default: "
                                  "the API key's callback_url")

    @field_validator("schedule_at", "expires_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("times need a timezone (e.g. 2026-11-24T09:00:00+08:00)")
        return v


class SendRequest(_Timing):
    to: Msisdn = Field(description="destination phone, e.g. +86 138 0000 0001 or 13800000001")
    text: MtText = Field(description=f"at most {MAX_PARTS_ENV} SMS parts (default "
                                     f"{DEFAULT_MAX_PARTS})")


class Queued(BaseModel):
    id: int
    status: str


class BulkItem(BaseModel):
    # Plain strings here: each item is checked on its own (`_check_item`), so one bad number
    # is reported with its index instead of refusing the other 999.
    to: str
    text: str


class BulkRequest(_Timing):
    """Either ``messages`` (each its own text) or ``to`` + ``text`` (one text to many)."""

    messages: list[BulkItem] | None = Field(default=None, max_length=MAX_BULK)
    to: list[str] | None = Field(default=None, max_length=MAX_BULK)
    text: MtText | None = None

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


class BulkRejected(BaseModel):
    index: int = Field(description="0-based position in the request's list")
    to: str = Field(description="the number as given")
    reason: str


class BulkQueued(BaseModel):
    ids: list[int | None] = Field(description="one per item, in request order; null where "
                                              "the item was rejected")
    queued: int
    rejected: list[BulkRejected]
    status: str = Field(description="queued (all items) or partial (some rejected)")


BULK_DESCRIPTION = f"""Queue up to {MAX_BULK} MTs: a list of `{{to, text}}`, or one `text` to a
list of numbers (`to`).

Each item is checked on its own (the phone number as in `POST /messages`, the text at most
`{MAX_PARTS_ENV}` SMS parts). The good items are queued together, in one transaction; the bad
ones are reported, never silently dropped:

* **202** every item queued: `{{"ids": [..], "queued": n, "rejected": [], "status": "queued"}}`.
* **207** some items rejected, the rest queued: `ids` has `null` at each rejected index and
  `rejected` lists `{{"index", "to", "reason"}}` (index is 0-based in the request's list),
  `status` is `partial`.
* **422** no item is valid (or the request itself is malformed): nothing is queued;
  `error.details` lists the same `{{"index", "to", "reason"}}` entries.
"""


def _url(value: HttpUrl | None) -> str | None:
    return None if value is None else str(value)


def _check_item(to: str, text: str) -> tuple[str, str]:
    """(canonical number, text) or FieldError / InvalidPhoneNumber with the reason."""
    return canonical(to), mt_text(text)


@router.post("", status_code=202, response_model=Queued)
async def send(req: SendRequest, gw: Gw, actor: Caller,
               idempotency_key: IdempotencyKey = None) -> Any:
    """Queue one MT. It is on disk when this answers; delivery follows.

    With an `Idempotency-Key` header a retry gets the first answer and queues nothing new
    (gateway/api/idempotency.py)."""
    claim = Claim.of(actor, idempotency_key, "POST /messages", req,
                     gw.settings.idempotency_ttl)
    now = datetime.now(UTC)

    def run(c: Connection) -> Queued | Replay:
        if claim is not None and (prior := claim.replay(c, now)) is not None:
            return prior
        mt_id = outbound.enqueue_mt(c, dest_addr=req.to, text=req.text,
                                    priority=req.priority, now=now,
                                    source_addr=gw.settings.source_addr,
                                    schedule_at=req.schedule_at, expires_at=req.expires_at)
        # In the enqueue's transaction: no final state can slip by before the URL is known.
        webhooks.set_callback(c, mt_id, _url(req.callback_url)
                              or webhooks.key_callback(c, actor.key_id))
        actor.record(c, "message", mt_id, after=req.model_dump(mode="json"))  # with the MT
        answer = Queued(id=mt_id, status="queued")
        if claim is not None:
            claim.save(c, 202, answer, now)
        return answer

    result = await _write(gw, run, idempotency_key)
    if isinstance(result, Replay):
        log.info("mt=%s replayed for Idempotency-Key (nothing queued)",
                 json.loads(result.body).get("id"))
        return result.response()
    log.info("mt=%d queued to=%s priority=%d", result.id, req.to, req.priority)
    gw.dispatcher.wake()
    return result


async def _write(gw: Any, run: Callable[[Connection], T], key: str | None) -> T:
    try:
        return await gw.store.write(run, urgent=True)  # the client waits for "accepted"
    except KeyInUse:
        raise in_use(key or "") from None


@router.post("/bulk", status_code=202, response_model=BulkQueued,
             description=BULK_DESCRIPTION,
             responses={207: {"model": BulkQueued,
                              "description": "some items rejected, the others queued"}})
async def send_many(req: BulkRequest, gw: Gw, actor: Caller, response: Response,
                    idempotency_key: IdempotencyKey = None) -> Any:
    claim = Claim.of(actor, idempotency_key, "POST /messages/bulk", req,
                     gw.settings.idempotency_ttl)
    good: list[tuple[int, str, str]] = []
    rejected: list[BulkRejected] = []
    for index, (to, text) in enumerate(req.items()):
        try:
            number, checked = _check_item(to, text)
        except ValueError as exc:  # InvalidPhoneNumber and FieldError both are
            rejected.append(BulkRejected(index=index, to=to, reason=str(exc)))
        else:
            good.append((index, number, checked))
    if not good:
        raise ApiError(422, "validation_error",
                       f"no valid item: {rejected[0].reason} (item {rejected[0].index})"
                       + (f" and {len(rejected) - 1} more" if len(rejected) > 1 else ""),
                       [r.model_dump() for r in rejected])
    now = datetime.now(UTC)
    rows = [{"dest_addr": number, "text": text, "priority": req.priority,
             "schedule_at": req.schedule_at, "expires_at": req.expires_at}
            for _, number, text in good]
    status_code = 207 if rejected else 202

    def run(c: Connection) -> BulkQueued | Replay:
        if claim is not None and (prior := claim.replay(c, now)) is not None:
            return prior
        new = outbound.enqueue_many(c, rows, now=now, source_addr=gw.settings.source_addr)
        url = _url(req.callback_url) or webhooks.key_callback(c, actor.key_id)
        for mt_id in new:  # in the enqueue's transaction: no final state can slip by
            webhooks.set_callback(c, mt_id, url)
        actor.record(c, "message", f"bulk:{new[0]}-{new[-1]}", after={
            "count": len(new), "ids": new, "priority": req.priority,
            "schedule_at": req.schedule_at,
            "rejected": [r.model_dump() for r in rejected]})
        ids: list[int | None] = [None] * (len(good) + len(rejected))
        for (index, _, _), mt_id in zip(good, new, strict=True):
            ids[index] = mt_id
        answer = BulkQueued(ids=ids, queued=len(new), rejected=rejected,
                            status="partial" if rejected else "queued")
        if claim is not None:
            claim.save(c, status_code, answer, now)
        return answer

    result = await _write(gw, run, idempotency_key)
    if isinstance(result, Replay):
        log.info("bulk replayed for Idempotency-Key (nothing queued)")
        return result.response()
    new_ids = [i for i in result.ids if i is not None]
    for (_, number, _), mt_id in zip(good, new_ids, strict=True):
        log.info("mt=%d queued to=%s priority=%d (bulk)", mt_id, number, req.priority)
    if rejected:
        log.info("bulk %d-%d: %d queued, %d rejected", new_ids[0], new_ids[-1], len(new_ids),
                 len(rejected))
    gw.dispatcher.wake()
    response.status_code = status_code
    return result


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
