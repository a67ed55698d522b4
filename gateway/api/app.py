"""The admin HTTP API. Only wiring here; each resource lives in gateway/api/routes/."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI

from gateway import console
from gateway.api import errors
from gateway.api.deps import authorized
from gateway.api.limits import RequestLimits
from gateway.api.routes import (
    accounts,
    api_keys,
    broadcasts,
    connections,
    connector_inbound,
    data,
    engagement,
    events,
    groups,
    health,
    messages,
    numbers,
    orders,
    products,
    rules,
    stats,
    templates,
    topics,
    webhooks,
)

if TYPE_CHECKING:
    from gateway.app import Gateway

DESCRIPTION = """\
Send and track SMS, manage accounts, products, topics, groups, rules; review orders; export
collected data; statistics and health.

**Auth**: every endpoint but `/healthz`, `/readyz` and `/metrics` needs an API key, sent as
`Authorization: Bearer <key>` or `X-API-Key: <key>`. Roles: *viewer* reads, *operator* also
changes things, *admin* also manages API keys. The first start (`smsgw up`) creates an admin
key and prints it once; create more with `smsgw api-key create`. No request is served without
a key (unless the gateway runs with `--insecure-dev`); repeated wrong keys from one address
get 429 for a while. Every change is recorded in `/audit-log`.

**Errors** are always `{"error": {"code": "...", "message": "..."}}`. Bodies are limited to
1 MiB (10 MiB for the CSV import). Listings page with an opaque `cursor`.
"""

# Routers whose every operation needs a key (reads: viewer, changes: operator; the API-key
# operations check admin themselves).
PROTECTED = (messages, broadcasts, events, accounts, products, topics, groups, rules,
             templates, connections, orders, data, stats, api_keys, engagement,
             webhooks, numbers)


def create_app(gateway: Gateway) -> FastAPI:
    # /docs and /redoc are served by the console with local assets (air-gapped hosts).
    app = FastAPI(title="smsgw admin API", version="0.1.0", description=DESCRIPTION,
                  docs_url=None, redoc_url=None)
    app.state.gateway = gateway
    app.include_router(health.router)
    # Providers push receipts and MOs with their connector's own token, not an API key.
    app.include_router(connector_inbound.router, responses=errors.COMMON_RESPONSES)
    for module in PROTECTED:
        app.include_router(module.router, dependencies=[Depends(authorized)],
                           responses=errors.COMMON_RESPONSES)
    errors.install(app)
    console.mount(app, gateway)
    app.add_middleware(RequestLimits)
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """Point FastAPI's default 422 schema at our error shape, and drop its own models."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        ref = {"$ref": "#/components/schemas/ErrorResponse"}
        for path_item in schema.get("paths", {}).values():
            for op in path_item.values():
                if not isinstance(op, dict):
                    continue
                resp = op.get("responses", {}).get("422")
                if resp is not None:
                    resp["content"] = {"application/json": {"schema": ref}}
        comps = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            comps.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
