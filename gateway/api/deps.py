"""Shared request dependencies: the gateway, the caller's API key and role, audit records.

Roles, lowest first: viewer (reads), operator (reads and changes), admin (also API keys).
A key is sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Setup mode: until the first API key is created, requests from the loopback interface are
served as admin without a key, so a fresh ``smsgw up`` works with zero setup (curl, the
README); everything else gets 401 naming ``smsgw api-key create --role admin``. Creating any
key (CLI or POST /api-keys) ends setup mode for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Connection

from gateway.api.errors import ApiError
from store import admin

if TYPE_CHECKING:
    from gateway.app import Gateway

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CREATE_HINT = "create one with: smsgw api-key create --role admin"

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer <key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway


Gw = Annotated["Gateway", Depends(gateway)]


@dataclass(frozen=True, slots=True)
class Actor:
    key_id: int | None  # None in setup mode
    name: str
    role: str
    method: str
    path: str

    def record(self, conn: Connection, resource: str, resource_id: object = None, *,
               before: Any = None, after: Any = None) -> None:
        """Write the audit row for a change (call inside the change's transaction)."""
        admin.audit(conn, now=datetime.now(UTC), key_id=self.key_id, key_name=self.name,
                    method=self.method, path=self.path, resource=resource,
                    resource_id=resource_id, before=before, after=after)


async def _caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Actor:
    gw: Gateway = request.app.state.gateway
    key = bearer.credentials if bearer is not None else header
    method, path = request.method, request.url.path
    if not key:
        client = request.client.host if request.client else ""
        if client in LOOPBACK and not await _keys_exist(request, gw):
            return Actor(None, "setup-mode", "admin", method, path)
        raise ApiError(401, "unauthorized",
                       "an API key is required (Authorization: Bearer <key> or X-API-Key); "
                       + CREATE_HINT, headers={"WWW-Authenticate": "Bearer"})
    assert gw.store is not None
    found = await gw.store.read(lambda c: admin.find_api_key(c, key))
    if found is None:
        raise ApiError(401, "invalid_key", "unknown or revoked API key",
                       headers={"WWW-Authenticate": "Bearer"})
    return Actor(found.id, f"{found.name} ({found.prefix}…)", found.role, method, path)


async def _keys_exist(request: Request, gw: Gateway) -> bool:
    if getattr(request.app.state, "keys_exist", False):
        return True  # keys are never deleted, only revoked: once true, always true
    assert gw.store is not None
    exists = await gw.store.read(admin.any_api_key)
    if exists:
        request.app.state.keys_exist = True
    return exists


def _check(actor: Actor, role: str) -> Actor:
    if admin.ROLE_RANK[actor.role] < admin.ROLE_RANK[role]:
        raise ApiError(403, "forbidden", f"this needs the {role} role; the key is {actor.role}")
    return actor


async def authorized(actor: Annotated[Actor, Depends(_caller)], request: Request) -> Actor:
    """Reads need viewer, changes need operator."""
    return _check(actor, "viewer" if request.method in READ_METHODS else "operator")


async def admin_only(actor: Annotated[Actor, Depends(_caller)]) -> Actor:
    return _check(actor, "admin")


Caller = Annotated[Actor, Depends(authorized)]
Admin = Annotated[Actor, Depends(admin_only)]
