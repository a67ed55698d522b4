"""API keys (admin only) and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from gateway.api.common import Cursor, IdPath, IdQuery, Limit, Page, decode_cursor, page
from gateway.api.deps import Admin, Caller, Gw
from gateway.api.errors import ApiError, not_found
from store import admin

router = APIRouter(tags=["api keys"])


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    role: Literal["admin", "operator", "viewer"]


class KeyCreated(BaseModel):
    id: int
    name: str
    role: str
    prefix: str
    key: str = Field(description="the key; shown this once, stored only as a hash")


@router.get("/api-keys")
async def list_keys(gw: Gw, _: Admin) -> list[dict[str, Any]]:
    """Every key (hashes never shown), revoked ones included."""
    return await gw.store.read(admin.list_api_keys)


@router.post("/api-keys", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyIn, gw: Gw, actor: Admin) -> KeyCreated:
    def run(c: Connection) -> KeyCreated:
        key_id, key = admin.create_api_key(c, name=body.name, role=body.role,
                                           now=datetime.now(UTC), created_by=actor.name[:64])
        row = admin.get_api_key(c, key_id)
        actor.record(c, "api_key", key_id, after=row)
        return KeyCreated(id=key_id, name=body.name, role=body.role, prefix=key[:12], key=key)

    return await gw.store.write(run)


@router.delete("/api-keys/{key_id}")
async def revoke_key(key_id: IdPath, gw: Gw, actor: Admin) -> dict[str, Any]:
    """Revoke a key (kept for the audit log). A key cannot revoke itself."""
    if key_id == actor.key_id:
        raise ApiError(409, "own_key", "a key cannot revoke itself; use another admin key")

    def run(c: Connection) -> dict[str, Any]:
        before = admin.get_api_key(c, key_id)
        if before is None:
            raise not_found("API key", key_id)
        if before["revoked_at"] is None:
            admin.revoke_api_key(c, key_id, now=datetime.now(UTC))
        after = admin.get_api_key(c, key_id)
        actor.record(c, "api_key", key_id, before=before, after=after)
        return after  # type: ignore[return-value]

    return await gw.store.write(run)


@router.get("/audit-log", response_model=Page, tags=["audit"])
async def audit_log(
    gw: Gw, _: Caller, limit: Limit = 100, cursor: Cursor = None,
    resource: Annotated[str | None, Query(max_length=32)] = None,
    resource_id: Annotated[str | None, Query(max_length=64)] = None,
    key_id: IdQuery = None,
) -> Page:
    """Changes made through the API, newest first: who (key), what (method, path, resource),
    when, and the resource before and after."""
    before = decode_cursor("audit", cursor)
    rows = await gw.store.read(lambda c: admin.list_audit(
        c, resource=resource, resource_id=resource_id, key_id=key_id, before_id=before,
        limit=limit + 1))
    return page("audit", rows, limit)
