"""Receipts and MOs pushed to us by HTTP provider connectors (gateway/connectors/http.py).

Not under the admin API keys: each connector has its own ``inbound_token`` (a provider gets
no admin key). What arrives becomes the deliver_sm PDU the gateway's inbound handling takes
(gateway/inbound.py): the same deduplication, and the same rule that it is committed before
we answer 200; a provider retrying after a lost answer causes no second effect.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request

from gateway.api.deps import Gw
from gateway.api.errors import ApiError

router = APIRouter(prefix="/connectors", tags=["connectors"])


def _connector(gw: Any, name: str, request: Request) -> Any:
    from gateway.connectors.http import HttpConnector

    found = next((c for c in getattr(gw, "clients", []) if c.name == name), None)
    if not isinstance(found, HttpConnector):
        raise ApiError(404, "not_found", f"no HTTP connector named {name!r}")
    token = found.options.inbound_token
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "unauthorized", f"connector {name!r}: wrong or missing "
                       "'Authorization: Bearer <inbound_token>' (options.inbound_token)")
    return found


async def _json(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise ApiError(422, "validation_error", "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(422, "validation_error", "the body must be a JSON object")
    return data


@router.post("/{name}/receipts")
async def receipt(name: str, request: Request, gw: Gw) -> dict[str, str]:
    conn = _connector(gw, name, request)
    try:
        pdu = conn.receipt_pdu(await _json(request))
    except ValueError as exc:
        raise ApiError(422, "validation_error", str(exc)) from None
    await gw.inbound.on_deliver_sm(name, pdu)
    return {"status": "accepted"}


@router.post("/{name}/mo")
async def mo(name: str, request: Request, gw: Gw) -> dict[str, str]:
    conn = _connector(gw, name, request)
    try:
        pdu = conn.mo_pdu(await _json(request))
    except ValueError as exc:
        raise ApiError(422, "validation_error", str(exc)) from None
    await gw.inbound.on_deliver_sm(name, pdu)
    return {"status": "accepted"}
