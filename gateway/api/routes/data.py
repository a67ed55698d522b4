"""Collected data: sales reports, stock counts, serial events (JSON or CSV), and the
per-phone interaction log."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime

from gateway.api.common import CSV_RESPONSE, IdQuery, PhonePath, csv_response
from gateway.api.deps import Caller, Gw
from store import admin

router = APIRouter(tags=["collected data"])

Format = Annotated[Literal["json", "csv"], Query(description="csv for a spreadsheet")]
Route = Annotated[str | None, Query(max_length=64)]
ProductCode = Annotated[str | None, Query(max_length=4)]
MaxRows = Annotated[int, Query(ge=1, le=100_000)]


def _filter(account_id: int | None, route: str | None, product: str | None,
            since: date | None, until: date | None) -> admin.DataFilter:
    return admin.DataFilter(account_id=account_id, route=route, product_code=product,
                            since=since, until=until)


def _answer(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: str, name: str
            ) -> Response:
    if fmt == "csv":
        return csv_response(rows, columns, f"{name}.csv")
    return JSONResponse({"items": admin.to_jsonable(rows)})


@router.get("/sales-reports", responses=CSV_RESPONSE)
async def sales_reports(gw: Gw, _: Caller, account_id: IdQuery = None, route: Route = None,
                        product_code: ProductCode = None, since: date | None = None,
                        until: date | None = None, format: Format = "json",
                        limit: MaxRows = 10_000) -> Response:
    """Daily sales report lines (one row per product), newest first; dates inclusive."""
    f = _filter(account_id, route, product_code, since, until)
    rows = await gw.store.read(lambda c: admin.sales(c, f, limit=limit))
    return _answer(rows, admin.SALES_COLUMNS, format, "sales-reports")


@router.get("/sales-reports/export.csv", responses=CSV_RESPONSE)
async def sales_reports_csv(gw: Gw, _: Caller, account_id: IdQuery = None,
                            route: Route = None, product_code: ProductCode = None,
                            since: date | None = None, until: date | None = None,
                            limit: MaxRows = 100_000) -> Response:
    f = _filter(account_id, route, product_code, since, until)
    rows = await gw.store.read(lambda c: admin.sales(c, f, limit=limit))
    return csv_response(rows, admin.SALES_COLUMNS, "sales-reports.csv")


@router.get("/stock-counts", responses=CSV_RESPONSE)
async def stock_counts(gw: Gw, _: Caller, account_id: IdQuery = None, route: Route = None,
                       product_code: ProductCode = None, since: date | None = None,
                       until: date | None = None, format: Format = "json",
                       limit: MaxRows = 10_000) -> Response:
    """Stock count lines (one row per product), newest first; dates inclusive."""
    f = _filter(account_id, route, product_code, since, until)
    rows = await gw.store.read(lambda c: admin.stock(c, f, limit=limit))
    return _answer(rows, admin.STOCK_COLUMNS, format, "stock-counts")


@router.get("/stock-counts/export.csv", responses=CSV_RESPONSE)
async def stock_counts_csv(gw: Gw, _: Caller, account_id: IdQuery = None, route: Route = None,
                           product_code: ProductCode = None, since: date | None = None,
                           until: date | None = None, limit: MaxRows = 100_000) -> Response:
    f = _filter(account_id, route, product_code, since, until)
    rows = await gw.store.read(lambda c: admin.stock(c, f, limit=limit))
    return csv_response(rows, admin.STOCK_COLUMNS, "stock-counts.csv")


@router.get("/serial-events", responses=CSV_RESPONSE)
async def serial_events(gw: Gw, _: Caller, account_id: IdQuery = None, route: Route = None,
                        serial: Annotated[str | None, Query(max_length=32)] = None,
                        duplicate: bool | None = None, since: date | None = None,
                        until: date | None = None, format: Format = "json",
                        limit: MaxRows = 10_000) -> Response:
    """Serial numbers / IMEIs reported sold, newest first (duplicates flagged)."""
    f = _filter(account_id, route, None, since, until)
    rows = await gw.store.read(lambda c: admin.serials(c, f, serial=serial,
                                                       duplicate=duplicate, limit=limit))
    return _answer(rows, admin.SERIAL_COLUMNS, format, "serial-events")


@router.get("/serial-events/export.csv", responses=CSV_RESPONSE)
async def serial_events_csv(gw: Gw, _: Caller, account_id: IdQuery = None, route: Route = None,
                            serial: Annotated[str | None, Query(max_length=32)] = None,
                            duplicate: bool | None = None, since: date | None = None,
                            until: date | None = None, limit: MaxRows = 100_000) -> Response:
    f = _filter(account_id, route, None, since, until)
    rows = await gw.store.read(lambda c: admin.serials(c, f, serial=serial,
                                                       duplicate=duplicate, limit=limit))
    return csv_response(rows, admin.SERIAL_COLUMNS, "serial-events.csv")


@router.get("/phones/{phone}/interactions")
async def interactions(
    gw: Gw, _: Caller, phone: PhonePath,
    since: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Every MO from and MT to the phone, oldest first; any written form of the number
    finds the same rows."""
    items = await gw.store.read(lambda c: admin.interactions(c, phone, since=since,
                                                             limit=limit))
    return {"phone": phone, "items": items}
