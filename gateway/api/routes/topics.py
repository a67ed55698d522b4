"""Topics and their subscriptions (SUB / UNSUB by SMS change the same rows)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.engine import Connection

from common.phones import Msisdn
from gateway.api.common import PhonePath
from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError, not_found
from store.domain import topics as repo
from store.models import subscriptions, topics

router = APIRouter(prefix="/topics", tags=["topics"])

Code = Annotated[str, Path(pattern=r"^[0-9A-Za-z_]{1,32}$")]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class TopicPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name_zh: Name | None = None
    name_en: Name | None = None
    public: bool | None = Field(default=None, description="unregistered numbers may subscribe")
    active: bool | None = None


class TopicIn(TopicPatch):
    code: str = Field(pattern=r"^[0-9A-Za-z_]{1,32}$")
    name_zh: Name
    name_en: Name


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Msisdn = Field(max_length=32, description="any form, e.g. +86 138-0000-0001")
    window_start: int | None = Field(default=None, ge=0, le=23,
                                     description="local hour the subscriber accepts from")
    window_end: int | None = Field(default=None, ge=0, le=24)

    @model_validator(mode="after")
    def _both(self) -> SubscriptionIn:
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("give both window_start and window_end, or neither")
        return self


def _get(c: Connection, code: str) -> dict[str, Any] | None:
    row = c.execute(sa.select(topics).where(topics.c.code == code.upper())).mappings().first()
    return None if row is None else dict(row)


def _topic(c: Connection, code: str) -> dict[str, Any]:
    found = _get(c, code)
    if found is None:
        raise not_found("topic", code.upper())
    return found


@router.get("")
async def list_topics(gw: Gw, _: Caller) -> list[dict[str, Any]]:
    q = sa.select(topics, sa.select(sa.func.count()).where(
        subscriptions.c.topic_id == topics.c.id).scalar_subquery().label("subscribers")
                  ).order_by(topics.c.code)
    return await gw.store.read(lambda c: [dict(r) for r in c.execute(q).mappings()])


@router.post("", status_code=201)
async def create_topic(body: TopicIn, gw: Gw, actor: Caller) -> dict[str, Any]:
    values = body.model_dump(exclude_none=True)
    values["code"] = values["code"].upper()

    def run(c: Connection) -> dict[str, Any]:
        if _get(c, values["code"]) is not None:
            raise ApiError(409, "exists", f"topic {values['code']} exists")
        c.execute(topics.insert().values(**values))
        after = _topic(c, values["code"])
        actor.record(c, "topic", values["code"], after=after)
        return after

    return await gw.store.write(run)


@router.get("/{code}")
async def get_topic(code: Code, gw: Gw, _: Caller) -> dict[str, Any]:
    return await gw.store.read(lambda c: _topic(c, code))


async def _update(gw: Any, actor: Any, code: str, values: dict[str, Any]) -> dict[str, Any]:
    if any(v is None for v in values.values()):
        raise ApiError(422, "validation_error", "topic fields may not be null")

    def run(c: Connection) -> dict[str, Any]:
        before = _topic(c, code)
        if values:
            c.execute(topics.update().where(topics.c.id == before["id"]).values(**values))
        after = _topic(c, code)
        actor.record(c, "topic", before["code"], before=before, after=after)
        return after

    return await gw.store.write(run)


@router.patch("/{code}")
async def update_topic(code: Code, body: TopicPatch, gw: Gw, actor: Caller) -> dict[str, Any]:
    return await _update(gw, actor, code, body.model_dump(exclude_unset=True))


@router.delete("/{code}")
async def deactivate_topic(code: Code, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Deactivate (subscriptions are kept, so reactivating restores them)."""
    return await _update(gw, actor, code, {"active": False})


@router.get("/{code}/subscriptions")
async def list_subscriptions(code: Code, gw: Gw, _: Caller) -> list[dict[str, Any]]:
    def run(c: Connection) -> list[dict[str, Any]]:
        topic = _topic(c, code)
        q = sa.select(subscriptions).where(subscriptions.c.topic_id == topic["id"])
        return [dict(r) for r in c.execute(q.order_by(subscriptions.c.id)).mappings()]

    return await gw.store.read(run)


@router.post("/{code}/subscriptions", status_code=201)
async def subscribe(code: Code, body: SubscriptionIn, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Subscribe a number (or change its window); clears an opt-out, as SUB by SMS does."""
    phone = body.phone
    window = (None if body.window_start is None
              else (body.window_start, body.window_end))

    def run(c: Connection) -> dict[str, Any]:
        topic = _topic(c, code)
        before = repo.subscription(c, phone, topic["id"])
        repo.subscribe(c, phone, topic["id"], window=window,  # type: ignore[arg-type]
                       now=datetime.now(UTC))
        after = dict(repo.subscription(c, phone, topic["id"])._mapping)  # type: ignore[union-attr]
        actor.record(c, "subscription", f"{topic['code']}:{phone}",
                     before=None if before is None else dict(before._mapping), after=after)
        return after

    return await gw.store.write(run)


@router.delete("/{code}/subscriptions/{phone}")
async def unsubscribe(code: Code, phone: PhonePath, gw: Gw, actor: Caller) -> dict[str, Any]:
    def run(c: Connection) -> dict[str, Any]:
        topic = _topic(c, code)
        before = repo.subscription(c, phone, topic["id"])
        if before is None:
            raise not_found("subscription", f"{topic['code']}:{phone}")
        repo.unsubscribe(c, phone, topic["id"])
        actor.record(c, "subscription", f"{topic['code']}:{phone}",
                     before=dict(before._mapping))
        return {"topic": topic["code"], "phone": phone, "subscribed": False}

    return await gw.store.write(run)
