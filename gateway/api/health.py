"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.deps import gateway
from gateway.metrics import METRICS
from store import outbound

if TYPE_CHECKING:
    from gateway.app import Gateway

router = APIRouter(tags=["health"])
Gw = Annotated["Gateway", Depends(gateway)]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(gw: Gw) -> JSONResponse:
    """Ready when the store answers and the SMSC bind is up."""
    checks = {"store": True, "smsc_bound": gw.client.bound}
    try:
        await gw.store.read(lambda c: outbound.queue_depth(c))
    except Exception:
        checks["store"] = False
    ok = all(checks.values())
    return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics(gw: Gw) -> Response:
    depth = await gw.store.read(lambda c: outbound.queue_depth(c))
    for priority in range(4):
        METRICS.queue_depth.labels(str(priority)).set(depth.get(priority, 0))
    return Response(generate_latest(METRICS.registry), media_type=CONTENT_TYPE_LATEST)
