"""The product catalogue."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from common.fields import ProductCode
from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError, not_found
from store.domain import products as product_repo
from store.models import products

router = APIRouter(prefix="/products", tags=["products"])

# Lookups stay lenient: a row made before codes were checked can still be read and retired.
Code = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{1,4}$")]
Cents = Annotated[int, Field(ge=0, le=10**12)]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class ProductPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name_zh: Name | None = None
    name_en: Name | None = None
    price_cents: Cents | None = None
    cost_cents: Cents | None = None
    max_qty: int | None = Field(default=None, ge=1, le=1_000_000)
    stock_qty: int | None = Field(default=None, ge=0, le=10**9)
    active: bool | None = None


class ProductIn(ProductPatch):
    code: ProductCode = Field(description="the code texted in orders: 4 digits, e.g. 1001")
    name_zh: Name
    name_en: Name
    price_cents: Cents
    cost_cents: Cents
    max_qty: int = Field(ge=1, le=1_000_000)


def _get(c: Connection, code: str) -> dict[str, Any] | None:
    row = c.execute(sa.select(products).where(products.c.code == code.upper())).mappings().first()
    return None if row is None else dict(row)


@router.get("")
async def list_products(gw: Gw, _: Caller, active: bool | None = None) -> list[dict[str, Any]]:
    q = sa.select(products).order_by(products.c.code)
    if active is not None:
        q = q.where(products.c.active == active)
    return await gw.store.read(lambda c: [dict(r) for r in c.execute(q).mappings()])


@router.post("", status_code=201)
async def create_product(body: ProductIn, gw: Gw, actor: Caller) -> dict[str, Any]:
    values = body.model_dump(exclude_none=True)
    code = values.pop("code")

    def run(c: Connection) -> dict[str, Any]:
        if _get(c, code) is not None:
            raise ApiError(409, "exists", f"product {code} exists")
        product_repo.insert(c, code=code, **values)
        after = _get(c, code)
        actor.record(c, "product", code, after=after)
        return after  # type: ignore[return-value]

    return await gw.store.write(run)


@router.get("/{code}")
async def get_product(code: Code, gw: Gw, _: Caller) -> dict[str, Any]:
    found = await gw.store.read(lambda c: _get(c, code))
    if found is None:
        raise not_found("product", code)
    return found


async def _update(gw: Any, actor: Any, code: str, values: dict[str, Any]) -> dict[str, Any]:
    if any(v is None for v in values.values()):
        raise ApiError(422, "validation_error", "product fields may not be null")

    def run(c: Connection) -> dict[str, Any]:
        before = _get(c, code)
        if before is None:
            raise not_found("product", code)
        if values:
            c.execute(products.update().where(products.c.code == before["code"]).values(**values))
        after = _get(c, code)
        actor.record(c, "product", before["code"], before=before, after=after)
        return after  # type: ignore[return-value]

    return await gw.store.write(run)


@router.patch("/{code}")
async def update_product(code: Code, body: ProductPatch, gw: Gw, actor: Caller
                         ) -> dict[str, Any]:
    return await _update(gw, actor, code, body.model_dump(exclude_unset=True))


@router.delete("/{code}")
async def deactivate_product(code: Code, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Deactivate: orders and reports keep naming the code, so the row stays."""
    return await _update(gw, actor, code, {"active": False})
