"""Health, readiness and Prometheus metrics: open, no API key.

/metrics is open too: Prometheus scrapers usually carry no credentials, and the figures are
counts, not message content. The API listens on loopback by default; when it is exposed,
restrict /metrics at the reverse proxy.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.deps import Gw
from gateway.metrics import METRICS
from store import outbound

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready (see `reason`)"}})
async def readyz(gw: Gw) -> JSONResponse:
    """Ready when not draining, the store answers and the SMSC bind is up.

    While the gateway drains (SIGTERM) this answers 503 at once, so a load balancer stops
    sending API traffic here before the process exits.
    """
    checks = {"store": True, "smsc_bound": gw.client.bound, "draining": gw.draining}
    reasons = []
    if gw.draining:
        reasons.append("draining: the gateway is stopping (finishing messages on the wire)")
    try:
        await gw.store.read(lambda c: outbound.queue_depth(c))
    except Exception as exc:
        checks["store"] = False
        reasons.append(f"store: {exc}")
    if not checks["smsc_bound"]:
        reasons.append("SMSC not bound")
    ok = not reasons
    body: dict[str, object] = {"ready": ok, **checks}
    if reasons:
        body["reason"] = "; ".join(reasons)
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                             "description": "Prometheus text format"}})
async def metrics(gw: Gw) -> Response:
    """Prometheus metrics (open: see the module docstring)."""
    depth = await gw.store.read(lambda c: outbound.queue_depth(c))
    for priority in range(4):
        METRICS.queue_depth.labels(str(priority)).set(depth.get(priority, 0))
    return Response(generate_latest(METRICS.registry), media_type=CONTENT_TYPE_LATEST)
