"""One error shape everywhere: ``{"error": {"code": "...", "message": "...", "details": [...]}}``.

FastAPI's own handlers answer ``{"detail": ...}``; they are replaced here for routing errors
(404, 405), validation errors (422), our `ApiError`, stray ValueErrors (400) and anything
unexpected (500, with the cause in the log, not in the response).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from store.db import StoreUnavailable

log = logging.getLogger("smsgw.api")

CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "too_many_requests",
    500: "internal_error", 501: "not_implemented", 503: "unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 details: list[Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"no {what} {ident}")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[Any] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def _response(status: int, code: str, message: str, details: list[Any] | None = None,
              headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": CODES[status].replace("_", " ")}
    for status in (400, 401, 403, 404, 409, 413, 422, 429)
}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if isinstance(detail, dict) and "code" in detail:
            code, message = str(detail["code"]), str(detail.get("message", ""))
        else:
            code = CODES.get(exc.status_code, f"http_{exc.status_code}")
            message = str(detail) if detail else code.replace("_", " ")
        return _response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))} for e in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"])
        return _response(422, "validation_error",
                         f"{where}: {first['msg']}" if where else first["msg"], details)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_: Request, exc: StoreUnavailable) -> JSONResponse:
        # Nothing was saved: the client retries (Retry-After) instead of seeing a 500.
        log.warning("request refused, %s", exc)
        return _response(503, "store_unavailable", str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(IntegrityError)
    async def _conflict(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity error: %s", exc.orig)
        return _response(409, "conflict",
                         "conflicts with an existing row (a unique value is taken, or a "
                         "referenced row is missing or still in use)")

    @app.exception_handler(ValueError)
    async def _bad_value(_: Request, exc: ValueError) -> JSONResponse:
        return _response(400, "bad_request", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _response(500, "internal_error", "internal error (see the gateway log)")
