"""The admin HTTP API. Only wiring here; each resource lives in its own module."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.api import health, messages

if TYPE_CHECKING:
    from gateway.app import Gateway


def create_app(gateway: Gateway) -> FastAPI:
    app = FastAPI(title="smsgw admin API", version="0.1.0",
                  description="Send and track SMS, inspect the gateway's health.")
    app.state.gateway = gateway
    app.include_router(health.router)
    app.include_router(messages.router)

    @app.exception_handler(ValueError)
    async def _bad_value(_: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"error": {"code": "bad_request", "message": str(exc)}}, 400)

    return app
