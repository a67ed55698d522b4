"""Shared request dependencies: the gateway, the caller's API key and role, audit records.

Roles, lowest first: viewer (reads), operator (reads and changes), admin (also API keys).
A key is sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Every request needs a key, whatever its source address: "loopback" is no identity (a reverse
proxy on the same host makes every stranger loopback). ``smsgw up`` creates the first admin
key on first start and prints it once. Only ``insecure_dev`` (``smsgw up --insecure-dev``,
SMSGW_INSECURE_DEV=1) serves keyless requests, as admin, for local development.

Wrong keys are throttled per source address (gateway/auth_throttle.py): after too many, the
source gets 429 with Retry-After, valid key or not, until its lockout ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Connection

from gateway.api.errors import ApiError
from gateway.auth_throttle import AuthLimits, FailureThrottle
from store import admin

if TYPE_CHECKING:
    from gateway.app import Gateway

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CREATE_HINT = ("`smsgw up` printed the first admin key at first start; "
               "create another with: smsgw api-key create --role admin")

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer <key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway


Gw = Annotated["Gateway", Depends(gateway)]


@dataclass(frozen=True, slots=True)
class Actor:
    key_id: int | None  # None in insecure-dev mode
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
        if gw.settings.insecure_dev:
            return Actor(None, "insecure-dev", "admin", method, path)
        raise ApiError(401, "unauthorized",
                       "an API key is required (Authorization: Bearer <key> or X-API-Key); "
                       + CREATE_HINT, headers={"WWW-Authenticate": "Bearer"})
    throttle = _throttle(request, gw)
    source = request.client.host if request.client else "?"
    wait = throttle.retry_after(source)
    if wait is not None:
        raise ApiError(429, "too_many_failures",
                       f"too many wrong API keys from {source}; retry in {wait} s",
                       headers={"Retry-After": str(wait)})
    assert gw.store is not None
    found = await gw.store.read(lambda c: admin.find_api_key(c, key))
    if found is None:
        throttle.failure(source)
        raise ApiError(401, "invalid_key", "unknown or revoked API key",
                       headers={"WWW-Authenticate": "Bearer"})
    throttle.success(source)
    return Actor(found.id, f"{found.name} ({found.prefix}…)", found.role, method, path)


def _throttle(request: Request, gw: Gateway) -> FailureThrottle:
    """The app's wrong-key throttle, made on first use (one per API app)."""
    throttle = getattr(request.app.state, "auth_throttle", None)
    if throttle is None:
        throttle = FailureThrottle("api", "source", AuthLimits.from_settings(gw.settings))
        request.app.state.auth_throttle = throttle
    return throttle


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
