"""Small pieces every resource module uses: pages and cursors, CSV answers, row shaping."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.responses import Response
from pydantic import BaseModel

from common.phones import Msisdn
from gateway.api.errors import ApiError
from store.admin import rows_to_csv

MAX_LIMIT = 500
MAX_ID = 2**63 - 1  # BIGINT; larger numbers would overflow the driver, not find nothing

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]

# A phone number in a path or query: any written form, canonical inside (422 says how to
# write it). Bodies use common.phones.Msisdn directly.
_PHONE_DOC = "a phone number in any form: 8613800000001, +86 138-0000-0001, 13800000001"
PhonePath = Annotated[Msisdn, Path(max_length=32, description=_PHONE_DOC)]
PhoneQuery = Annotated[Msisdn | None, Query(max_length=32, description=_PHONE_DOC)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")]
Cursor = Annotated[str | None, Query(max_length=64,
                                     description="next_cursor of the previous page")]


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None


def encode_cursor(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The id a cursor stands for; 400 for a cursor of another listing or not ours at all."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got_kind, _, value = raw.partition(":")
        last = int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "bad_cursor", "cursor is not one this API gave out") from None
    if got_kind != kind or last < 0:
        raise ApiError(400, "bad_cursor", f"cursor does not belong to this {kind} listing")
    return last


def page(kind: str, items: list[dict[str, Any]], limit: int) -> Page:
    """A page of ``limit`` rows fetched as limit + 1, so the last page has no cursor."""
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items,
                next_cursor=encode_cursor(kind, int(items[-1]["id"])) if more else None)


SECRET_COLUMNS = frozenset({"pin_hash", "key_hash", "password_hash"})


def clean(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A row as a dict without secrets (PIN hashes never leave the store)."""
    if row is None:
        return None
    return {k: v for k, v in row.items() if k not in SECRET_COLUMNS}


def csv_response(rows: Iterable[Mapping[str, Any]], columns: Iterable[str],
                 filename: str) -> Response:
    return Response(rows_to_csv(rows, columns), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "JSON by default; CSV with ?format=csv"},
}
