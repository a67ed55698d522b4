"""Accounts: CRUD, bulk CSV import with a per-row report, SMS ordering, PIN reset."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.engine import Connection

from commands.pins import hash_pin
from common.phones import Msisdn
from gateway.api.common import (
    Cursor,
    IdPath,
    Limit,
    Page,
    PhoneQuery,
    clean,
    decode_cursor,
    page,
)
from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError, not_found
from store.domain import accounts as repo
from store.models import accounts, pin_failures

router = APIRouter(prefix="/accounts", tags=["accounts"])

MAX_CSV_BYTES = 10 * 1024 * 1024  # also the body limit of this one endpoint (app.py)
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
MONEY = 10**15  # cents; far beyond any real balance, well inside BIGINT

Role = Literal["retailer", "subscriber", "manager"]
Lang = Literal["zh", "en"]
Cents = Annotated[int, Field(ge=-MONEY, le=MONEY)]
Pin = Annotated[str, Field(pattern=r"^[0-9]{6}$", description="6 digits")]
HhMm = Annotated[str, Field(pattern=HHMM)]
Short = Annotated[str, Field(min_length=1, max_length=64)]


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=128)
    role: Role | None = None
    phone: Msisdn | None = Field(default=None, max_length=32,
                                 description="any form, e.g. +86 138-0000-0001; stored "
                                             "canonical (8613800000001)")
    lang: Lang | None = None
    region: Short | None = None
    route: Short | None = None
    manager_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    sms_ordering: bool | None = None
    order_days: str | None = Field(default=None, pattern=r"^([1-7](,[1-7])*)?$",
                                   description="ISO weekdays, e.g. '1,4'; empty: every day")
    order_window_start: HhMm | None = None
    order_window_end: HhMm | None = None
    notify_window_start: HhMm | None = None
    notify_window_end: HhMm | None = None
    balance_cents: Cents | None = None
    credit_cents: Cents | None = None
    last_bill_cents: Cents | None = None
    last_bill_due: date | None = None
    balance_low_cents: Cents | None = None
    value_band: Annotated[str, Field(max_length=16)] | None = None
    active: bool | None = None


# Columns that must not become NULL (a PATCH with null for them is refused).
NOT_NULL = frozenset({"name", "role", "lang", "sms_ordering", "order_days", "balance_cents",
                      "credit_cents", "active", "account_no"})


class AccountIn(_Fields):
    account_no: str = Field(pattern=r"^[A-Za-z0-9]{1,32}$", description="the code used in REG")
    name: str = Field(min_length=1, max_length=128)
    role: Role
    pin: Pin | None = Field(default=None, description="initial PIN (stored hashed)")

    @field_validator("account_no")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()


class AccountPatch(_Fields):
    account_no: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,32}$")


class PinReset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: Pin | None = Field(default=None, description="omit to have one generated")


class PinResetResult(BaseModel):
    id: int
    pin: str = Field(description="the new PIN; shown this once, stored only hashed")


class SmsOrdering(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool
    order_days: str | None = Field(default=None, pattern=r"^([1-7](,[1-7])*)?$")
    order_window_start: HhMm | None = None
    order_window_end: HhMm | None = None


class ImportReport(BaseModel):
    imported: int
    ids: list[int]
    errors: list[dict[str, Any]] = Field(
        description="one entry per refused row: {row (line number, header = 1), "
                    "account_no, errors: [reasons]}")


def _get(conn: Connection, account_id: int) -> dict[str, Any] | None:
    return clean(conn.execute(sa.select(accounts).where(accounts.c.id == account_id))
                 .mappings().first())


def _check_manager(conn: Connection, manager_id: int | None) -> None:
    if manager_id is None:
        return
    row = repo.by_id(conn, manager_id)
    if row is None:
        raise ApiError(422, "validation_error", f"manager_id: no account {manager_id}")


@router.get("", response_model=Page)
async def list_accounts(
    gw: Gw, _: Caller, limit: Limit = 100, cursor: Cursor = None,
    role: Role | None = None, route: Annotated[str | None, Query(max_length=64)] = None,
    active: bool | None = None, sms_ordering: bool | None = None,
    phone: PhoneQuery = None,
    q: Annotated[str | None, Query(max_length=64, description="name or account_no contains")
                 ] = None,
) -> Page:
    before = decode_cursor("accounts", cursor)

    def run(c: Connection) -> list[dict[str, Any]]:
        s = sa.select(accounts)
        for col, value in (("role", role), ("route", route), ("active", active),
                           ("sms_ordering", sms_ordering), ("phone", phone)):
            if value is not None:
                s = s.where(accounts.c[col] == value)
        if q:
            like = f"%{q}%"
            s = s.where(sa.or_(accounts.c.name.like(like), accounts.c.account_no.like(like)))
        if before is not None:
            s = s.where(accounts.c.id < before)
        rows = c.execute(s.order_by(accounts.c.id.desc()).limit(limit + 1)).mappings()
        return [clean(r) for r in rows]  # type: ignore[misc]

    return page("accounts", await gw.store.read(run), limit)


@router.post("", status_code=201)
async def create_account(body: AccountIn, gw: Gw, actor: Caller) -> dict[str, Any]:
    values = body.model_dump(exclude_none=True, exclude={"pin"})
    pin_hash = await asyncio.to_thread(hash_pin, body.pin) if body.pin else None

    def run(c: Connection) -> dict[str, Any]:
        _check_manager(c, body.manager_id)
        if repo.by_account_no(c, body.account_no) is not None:
            raise ApiError(409, "exists", f"account {body.account_no} exists")
        if body.phone and repo.phone_taken(c, body.phone):
            raise ApiError(409, "phone_taken", f"phone {body.phone} belongs to another account")
        new_id = repo.create(c, now=datetime.now(UTC), pin_hash=pin_hash, **values)
        after = _get(c, new_id)
        actor.record(c, "account", new_id, after=after)
        return after  # type: ignore[return-value]

    return await gw.store.write(run)


@router.get("/{account_id}")
async def get_account(account_id: IdPath, gw: Gw, _: Caller) -> dict[str, Any]:
    found = await gw.store.read(lambda c: _get(c, account_id))
    if found is None:
        raise not_found("account", account_id)
    return found


async def _update(gw: Any, actor: Any, account_id: int, values: dict[str, Any]
                  ) -> dict[str, Any]:
    nulls = sorted(k for k, v in values.items() if v is None and k in NOT_NULL)
    if nulls:
        raise ApiError(422, "validation_error", f"{', '.join(nulls)}: may not be null")

    def run(c: Connection) -> dict[str, Any]:
        before = _get(c, account_id)
        if before is None:
            raise not_found("account", account_id)
        if values:
            _check_manager(c, values.get("manager_id"))
            if values.get("phone") and values["phone"] != before["phone"] \
                    and repo.phone_taken(c, values["phone"]):
                raise ApiError(409, "phone_taken", f"phone {values['phone']} belongs to "
                                                   "another account")
            if "account_no" in values:
                values["account_no"] = values["account_no"].upper()
                other = repo.by_account_no(c, values["account_no"])
                if other is not None and other.id != account_id:
                    raise ApiError(409, "exists", f"account {values['account_no']} exists")
            repo.update(c, account_id, now=datetime.now(UTC), **values)
        after = _get(c, account_id)
        actor.record(c, "account", account_id, before=before, after=after)
        return after  # type: ignore[return-value]

    return await gw.store.write(run)


@router.patch("/{account_id}")
async def update_account(account_id: IdPath, body: AccountPatch, gw: Gw, actor: Caller
                         ) -> dict[str, Any]:
    """Change some fields; ``sms_ordering``, ``order_days`` and the order window enable and
    shape SMS ordering."""
    return await _update(gw, actor, account_id, body.model_dump(exclude_unset=True))


@router.put("/{account_id}/sms-ordering")
async def set_sms_ordering(account_id: IdPath, body: SmsOrdering, gw: Gw, actor: Caller
                           ) -> dict[str, Any]:
    """Enable or disable SMS ordering, optionally with the order days and window."""
    values: dict[str, Any] = {"sms_ordering": body.enabled}
    values.update(body.model_dump(exclude_unset=True, exclude={"enabled"}))
    if values.get("order_days") is None:
        values.pop("order_days", None)
    return await _update(gw, actor, account_id, values)


@router.delete("/{account_id}")
async def deactivate_account(account_id: IdPath, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Deactivate (accounts are kept: orders, reports and messages refer to them)."""
    return await _update(gw, actor, account_id, {"active": False})


@router.post("/{account_id}/pin", response_model=PinResetResult)
async def reset_pin(account_id: IdPath, gw: Gw, actor: Caller,
                    body: PinReset | None = None) -> PinResetResult:
    """Set a new PIN (given, or generated and returned this once); clears the lockout."""
    pin = body.pin if body is not None and body.pin else f"{secrets.randbelow(10**6):06d}"
    pin_hash = await asyncio.to_thread(hash_pin, pin)

    def run(c: Connection) -> None:
        if repo.by_id(c, account_id) is None:
            raise not_found("account", account_id)
        repo.update(c, account_id, now=datetime.now(UTC), pin_hash=pin_hash,
                    pin_locked_until=None)
        c.execute(pin_failures.delete().where(pin_failures.c.account_id == account_id))
        actor.record(c, "account", account_id, before={"pin": "(old)"},
                     after={"pin": "(reset)"})

    await gw.store.write(run)
    return PinResetResult(id=account_id, pin=pin)


CSV_FIELDS = ("account_no", "role", "name", "phone", "pin", *(
    f for f in _Fields.model_fields if f not in ("name", "role", "phone")))
CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "UTF-8 CSV with a header row; columns: " + ", ".join(CSV_FIELDS)
                       + ". Empty cells are omitted.",
    },
}


@router.post("/import", response_model=ImportReport, openapi_extra=CSV_BODY)
async def import_accounts(request: Request, gw: Gw, actor: Caller) -> ImportReport:
    """Create accounts from a CSV file (at most 10 MiB). Good rows are imported; each bad
    row is reported with its line number and reasons, and nothing of it is written."""
    return await import_csv(await request.body(), gw, actor)


async def import_csv(raw: bytes, gw: Any, actor: Any) -> ImportReport:
    """The CSV import itself (the API and the console's upload both call it)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_csv", "the CSV must be UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    if not header:
        raise ApiError(400, "bad_csv", "the CSV needs a header row")
    unknown = sorted(set(header) - set(CSV_FIELDS))
    if unknown or "account_no" not in header:
        raise ApiError(400, "bad_csv", f"unknown columns {', '.join(unknown)}" if unknown
                       else "the CSV needs an account_no column")
    reader.fieldnames = header

    errors: list[dict[str, Any]] = []
    good: list[tuple[int, AccountIn]] = []
    seen_no: dict[str, int] = {}
    seen_phone: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            errors.append({"row": line, "account_no": cells.get("account_no"),
                           "errors": ["more cells than columns"]})
            continue
        if not any(cells.values()):
            continue
        try:
            item = AccountIn.model_validate({k: v for k, v in cells.items() if v != ""})
        except ValidationError as exc:
            errors.append({"row": line, "account_no": cells.get("account_no") or None,
                           "errors": [f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                      for e in exc.errors()]})
            continue
        problems = []
        if item.account_no in seen_no:
            problems.append(f"account_no {item.account_no} repeats row {seen_no[item.account_no]}")
        if item.phone and item.phone in seen_phone:
            problems.append(f"phone {item.phone} repeats row {seen_phone[item.phone]}")
        if problems:
            errors.append({"row": line, "account_no": item.account_no, "errors": problems})
            continue
        seen_no[item.account_no] = line
        if item.phone:
            seen_phone[item.phone] = line
        good.append((line, item))

    def existing(c: Connection) -> tuple[set[str], set[str], set[int]]:
        nos = {i.account_no for _, i in good}
        phones = {i.phone for _, i in good if i.phone}
        mgrs = {i.manager_id for _, i in good if i.manager_id}
        return (set(c.execute(sa.select(accounts.c.account_no)
                              .where(accounts.c.account_no.in_(nos))).scalars()) if nos else set(),
                set(c.execute(sa.select(accounts.c.phone)
                              .where(accounts.c.phone.in_(phones))).scalars()) if phones else set(),
                set(c.execute(sa.select(accounts.c.id)
                              .where(accounts.c.id.in_(mgrs))).scalars()) if mgrs else set())

    taken_no, taken_phone, managers = await gw.store.read(existing)
    ready: list[tuple[int, AccountIn]] = []
    for line, item in good:
        problems = []
        if item.account_no in taken_no:
            problems.append(f"account {item.account_no} exists")
        if item.phone and item.phone in taken_phone:
            problems.append(f"phone {item.phone} belongs to another account")
        if item.manager_id and item.manager_id not in managers:
            problems.append(f"manager_id: no account {item.manager_id}")
        if problems:
            errors.append({"row": line, "account_no": item.account_no, "errors": problems})
        else:
            ready.append((line, item))
    errors.sort(key=lambda e: e["row"])

    hashes = await asyncio.to_thread(
        lambda: [hash_pin(i.pin) if i.pin else None for _, i in ready])

    def write(c: Connection) -> list[int]:
        now = datetime.now(UTC)
        ids = []
        for (line, item), pin_hash in zip(ready, hashes, strict=True):
            new_id = repo.create(c, now=now, pin_hash=pin_hash,
                                 **item.model_dump(exclude_none=True, exclude={"pin"}))
            actor.record(c, "account", new_id, after={**_get(c, new_id), "csv_row": line})
            ids.append(new_id)
        return ids

    ids = await gw.store.write(write) if ready else []
    return ImportReport(imported=len(ids), ids=ids, errors=errors)
