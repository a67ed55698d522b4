"""Orders: list and filter, read one, approve (deducts the total from the balance) or reject
(with a reason). Both record the order history and raise the retailer's notice event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from gateway.api.common import Cursor, IdPath, IdQuery, Limit, Page, decode_cursor, page
from gateway.api.deps import Actor, Caller, Gw
from gateway.api.errors import ApiError, not_found
from gateway.api.routes.events import insert_event, wake_processor
from store import admin
from store.domain import accounts as account_repo
from store.domain import orders as repo
from store.models import ORDER_CHANGEABLE

router = APIRouter(prefix="/orders", tags=["orders"])

OrderStatus = Literal["pending_review", "pending_funds", "approved", "rejected", "cancelled"]


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=500)


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, description="sent to the retailer")


def _order(c: Connection, order_id: int) -> dict[str, Any]:
    row = repo.get(c, order_id)
    if row is None:
        raise not_found("order", order_id)
    out = dict(row._mapping)
    out["lines"] = [{"product_code": x.product_code, "qty": x.qty, "price_cents": x.price_cents}
                    for x in repo.lines(c, order_id)]
    out["history"] = [dict(h._mapping) for h in repo.history(c, order_id)]
    return out


@router.get("", response_model=Page)
async def list_orders(
    gw: Gw, _: Caller, limit: Limit = 100, cursor: Cursor = None,
    status: OrderStatus | None = None, account_id: IdQuery = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
) -> Page:
    """Orders, newest first."""
    before = decode_cursor("orders", cursor)
    rows = await gw.store.read(lambda c: admin.list_orders(
        c, status=status, account_id=account_id, since=since, until=until, before_id=before,
        limit=limit + 1))
    return page("orders", rows, limit)


@router.get("/{order_id}")
async def get_order(order_id: IdPath, gw: Gw, _: Caller) -> dict[str, Any]:
    """The order with its lines and status history."""
    return await gw.store.read(lambda c: _order(c, order_id))


def _raise_notice(gw: Any, c: Connection, type_: str, order: dict[str, Any],
                  reason: str | None) -> int | None:
    """The retailer's notice, as an event row. With SMSGW_ORDER_EVENTS on the notices
    service derives the same event from the order_history row, so none is added here."""
    if getattr(gw.settings, "order_events", False):
        return None
    payload: dict[str, Any] = {"account_id": order["account_id"], "order_id": order["id"],
                               "order": order["id"], "total_cents": order["total_cents"]}
    if reason is not None:
        payload["reason"] = reason
    return insert_event(c, type_, payload, datetime.now(UTC))


def _review(gw: Any, actor: Actor, order_id: int, approve: bool, text: str | None
            ) -> Any:
    def run(c: Connection) -> dict[str, Any]:
        before = _order(c, order_id)
        if before["status"] not in ORDER_CHANGEABLE:
            raise ApiError(409, "not_reviewable",
                           f"order {order_id} is {before['status']}; only orders awaiting "
                           "review can be approved or rejected")
        now = datetime.now(UTC)
        detail = f"api: {actor.name}" + (f": {text}" if text else "")
        account = account_repo.by_id(c, before["account_id"])
        assert account is not None
        if approve:
            total = before["total_cents"]
            if account.balance_cents + account.credit_cents < total:
                raise ApiError(409, "insufficient_funds",
                               f"order total {total} exceeds balance {account.balance_cents} "
                               f"+ credit {account.credit_cents} (cents)")
            account_repo.update(c, account.id, now=now,
                                balance_cents=account.balance_cents - total)
            repo.set_status(c, order_id, "approved", now=now, detail=detail)
        else:
            repo.set_status(c, order_id, "rejected", now=now, detail=detail,
                            reject_reason=text)
        event_id = _raise_notice(gw, c, "order.approved" if approve else "order.rejected",
                                 before, None if approve else text)
        after = _order(c, order_id)
        after["balance_cents"] = account_repo.by_id(c, account.id).balance_cents  # type: ignore[union-attr]
        after["event_id"] = event_id
        actor.record(c, "order", order_id,
                     before={**before, "balance_cents": account.balance_cents}, after=after)
        return after

    return run


@router.post("/{order_id}/approve")
async def approve(order_id: IdPath, gw: Gw, actor: Caller, body: Review | None = None
                  ) -> dict[str, Any]:
    """Approve an order awaiting review: its total is deducted from the account balance
    (409 when balance + credit do not cover it) and the retailer is notified."""
    result = await gw.store.write(_review(gw, actor, order_id, True,
                                          body.note if body else None))
    wake_processor(gw)
    return result


@router.post("/{order_id}/reject")
async def reject(order_id: IdPath, body: Rejection, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Reject an order awaiting review; the reason goes to the retailer."""
    result = await gw.store.write(_review(gw, actor, order_id, False, body.reason))
    wake_processor(gw)
    return result
