"""Webhooks: subscriptions (targets) CRUD, the delivery outbox, retry of dead deliveries.

Receivers verify signatures as docs/webhooks.md shows. Secrets are shown once, when a
subscription is created (or its secret rotated with ``"secret": "rotate"``); listings mask
them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, HttpUrl, field_validator

from gateway.api.common import Cursor, IdPath, Limit, Page, decode_cursor, page
from gateway.api.deps import Admin, Caller, Gw
from gateway.api.errors import ApiError, not_found
from store import webhooks
from store.models import WEBHOOK_STATUSES, api_keys

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

NAME = r"^[\w.:-]{1,64}$"


def _url(v: Any) -> str | None:
    return None if v is None else str(v)


class SubscriptionIn(BaseModel):
    name: str = Field(pattern=NAME, description="what 'webhook' rules name")
    url: HttpUrl = Field(description="POST target; for form 'get' a URL with %p %P %a … "
                                     "placeholders (docs/webhooks.md)")
    events: str = Field(default="*", max_length=2000,
                        description="'*', or comma-separated event types (order.approved, "
                                    "broadcast.done, order.*)")
    form: Literal["json", "get"] = "json"
    reply: bool = Field(default=False, description="Kannel style: a text/plain response "
                                                   "body to an MO becomes the reply SMS")
    max_concurrency: int = Field(default=4, ge=1, le=100)
    timeout: float = Field(default=10.0, gt=0, le=120)
    enabled: bool = True
    secret: str | None = Field(default=None, min_length=16, max_length=128,
                               description="HMAC key; generated when omitted")


class SubscriptionPatch(BaseModel):
    url: HttpUrl | None = None
    events: str | None = Field(default=None, max_length=2000)
    form: Literal["json", "get"] | None = None
    reply: bool | None = None
    max_concurrency: int | None = Field(default=None, ge=1, le=100)
    timeout: float | None = Field(default=None, gt=0, le=120)
    enabled: bool | None = None
    secret: str | None = Field(default=None, max_length=128,
                               description="a new secret, or 'rotate' for a generated one")

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is not None and v != "rotate" and len(v) < 16:
            raise ValueError("a secret needs at least 16 characters (or 'rotate')")
        return v


class KeyCallback(BaseModel):
    callback_url: HttpUrl | None = Field(description="default callback_url of the messages "
                                                     "this key sends; null to clear")


def _masked(sub: dict[str, Any]) -> dict[str, Any]:
    return {**sub, "secret": sub["secret"][:4] + "…"}


@router.get("/subscriptions")
async def list_subscriptions(gw: Gw, _: Caller) -> list[dict[str, Any]]:
    return [_masked(s) for s in await gw.store.read(webhooks.list_subscriptions)]


@router.post("/subscriptions", status_code=201)
async def create_subscription(body: SubscriptionIn, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Create a target. The answer holds the secret in full, this once."""
    now = datetime.now(UTC)
    fields = body.model_dump(exclude={"name"})
    fields["url"] = _url(body.url)

    def run(c: Any) -> dict[str, Any]:
        sub = webhooks.create_subscription(c, name=body.name, now=now, **fields)
        actor.record(c, "webhook_subscription", sub["id"], after=_masked(sub))
        return sub

    return await gw.store.write(run)


@router.get("/subscriptions/{sub_id}")
async def get_subscription(sub_id: IdPath, gw: Gw, _: Caller) -> dict[str, Any]:
    found = await gw.store.read(lambda c: webhooks.get_subscription(c, sub_id))
    if found is None:
        raise not_found("webhook subscription", sub_id)
    return _masked(found)


@router.patch("/subscriptions/{sub_id}")
async def update_subscription(sub_id: IdPath, body: SubscriptionPatch, gw: Gw,
                              actor: Caller) -> dict[str, Any]:
    fields = body.model_dump(exclude_none=True)
    if "url" in fields:
        fields["url"] = _url(body.url)
    if fields.get("secret") == "rotate":
        fields["secret"] = webhooks.new_secret()
    now = datetime.now(UTC)

    def run(c: Any) -> dict[str, Any] | None:
        before = webhooks.get_subscription(c, sub_id)
        if before is None:
            return None
        after = webhooks.update_subscription(c, sub_id, now=now, **fields)
        assert after is not None
        actor.record(c, "webhook_subscription", sub_id, before=_masked(before),
                     after=_masked(after))
        return after

    found = await gw.store.write(run)
    if found is None:
        raise not_found("webhook subscription", sub_id)
    return found if "secret" in fields else _masked(found)


@router.delete("/subscriptions/{sub_id}", status_code=204)
async def delete_subscription(sub_id: IdPath, gw: Gw, actor: Caller) -> None:
    def run(c: Any) -> bool:
        before = webhooks.get_subscription(c, sub_id)
        if before is None:
            return False
        actor.record(c, "webhook_subscription", sub_id, before=_masked(before))
        return webhooks.delete_subscription(c, sub_id)

    if not await gw.store.write(run):
        raise not_found("webhook subscription", sub_id)


@router.get("/deliveries", response_model=Page)
async def list_deliveries(
    gw: Gw, _: Caller, limit: Limit = 100, cursor: Cursor = None,
    status: Annotated[Literal[WEBHOOK_STATUSES] | None,  # type: ignore[valid-type]
                      Query(description=", ".join(WEBHOOK_STATUSES))] = None,
) -> Page:
    """The outbox, newest first: what is owed, what was delivered, what is dead (and why:
    ``last_error``, ``last_status``, ``attempts``)."""
    before = decode_cursor("webhook-deliveries", cursor)
    rows = await gw.store.read(lambda c: webhooks.list_deliveries(
        c, status=status, limit=limit + 1, before_id=before))
    return page("webhook-deliveries", rows, limit)


@router.get("/deliveries/{delivery_id}")
async def get_delivery(delivery_id: IdPath, gw: Gw, _: Caller) -> dict[str, Any]:
    found = await gw.store.read(lambda c: webhooks.get_delivery(c, delivery_id))
    if found is None:
        raise not_found("webhook delivery", delivery_id)
    return found


@router.post("/deliveries/{delivery_id}/retry")
async def retry_delivery(delivery_id: IdPath, gw: Gw, actor: Caller) -> dict[str, Any]:
    """A dead (or waiting) delivery is due now again, with a fresh count of tries."""
    now = datetime.now(UTC)

    def run(c: Any) -> str | None:
        was = webhooks.retry(c, delivery_id, now=now)
        if was in ("dead", "pending"):
            actor.record(c, "webhook_delivery", delivery_id, before={"status": was},
                         after={"status": "pending"})
        return was

    was = await gw.store.write(run)
    if was is None:
        raise not_found("webhook delivery", delivery_id)
    if was not in ("dead", "pending"):
        raise ApiError(409, "not_retriable", f"the delivery is {was}; only dead or pending "
                                             "deliveries can be retried")
    worker = getattr(gw, "webhooks", None)
    if worker is not None:
        worker.wake()
    return {"id": delivery_id, "status": "pending"}


@router.put("/api-keys/{key_id}/callback-url")
async def set_key_callback(key_id: IdPath, body: KeyCallback, gw: Gw,
                           actor: Admin) -> dict[str, Any]:
    """The default callback_url of the messages an API key sends (a message's own
    callback_url wins)."""
    url = _url(body.callback_url)

    def run(c: Any) -> bool:
        done = c.execute(api_keys.update().where(api_keys.c.id == key_id)
                         .values(callback_url=url)).rowcount
        if done:
            actor.record(c, "api_key", key_id, after={"callback_url": url})
        return bool(done)

    if not await gw.store.write(run):
        raise not_found("API key", key_id)
    return {"id": key_id, "callback_url": url}


@router.get("/default-secret")
async def default_secret(gw: Gw, _: Admin) -> dict[str, str]:
    """The secret signing callbacks that have no subscription (a message's callback_url),
    unless SMSGW_WEBHOOK_SECRET sets one."""
    secret = gw.settings.webhook_secret or await gw.store.write(webhooks.default_secret)
    return {"secret": secret}
