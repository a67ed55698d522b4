"""Accounts, their phone binding, PINs and the PIN lockout bookkeeping."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from store.fastsql import FastStatement
from store.models import accounts, pin_failures

# Every command from a retailer reads its account (store/fastsql.py: compiled once).
_BY_PHONE = FastStatement(sa.select(accounts).where(
    accounts.c.phone == sa.bindparam("b_phone"), accounts.c.active).limit(1))
_PIN_HASH = FastStatement(sa.select(accounts.c.pin_hash).where(
    accounts.c.phone == sa.bindparam("b_phone"), accounts.c.active).limit(1))


def by_phone(conn: Connection, phone: str) -> Row | None:
    """The active account bound to `phone`."""
    return _BY_PHONE.one_or_none(conn, {"b_phone": phone})  # type: ignore[no-any-return]


def by_account_no(conn: Connection, account_no: str) -> Row | None:
    return conn.execute(
        sa.select(accounts).where(accounts.c.account_no == account_no)
    ).first()


def by_id(conn: Connection, account_id: int) -> Row | None:
    return conn.execute(sa.select(accounts).where(accounts.c.id == account_id)).first()


def phone_taken(conn: Connection, phone: str) -> bool:
    """Whether any account (active or not) is bound to `phone` (accounts.phone is unique)."""
    q = sa.select(accounts.c.id).where(accounts.c.phone == phone)
    return conn.execute(q).first() is not None


def pin_hash_for_phone(conn: Connection, phone: str) -> str | None:
    """The PIN hash of the active account bound to `phone` (the engine's pre-transaction
    PIN check, Context.pin_ok)."""
    return _PIN_HASH.scalar(conn, {"b_phone": phone})  # type: ignore[no-any-return]


def pin_hash_for_account_no(conn: Connection, account_no: str) -> str | None:
    """The issued PIN hash of an account by its code (REG, before the phone is bound)."""
    q = sa.select(accounts.c.pin_hash).where(
        accounts.c.account_no == account_no, accounts.c.active
    )
    return conn.execute(q).scalar()


def any_pin_hash_with_prefix(conn: Connection, prefix: str) -> bool:
    """Whether some account's PIN hash starts with `prefix` (commands.pins, at start)."""
    q = sa.select(accounts.c.id).where(accounts.c.pin_hash.startswith(prefix, autoescape=True))
    return conn.execute(q.limit(1)).first() is not None


def create(conn: Connection, *, now: datetime, **values: object) -> int:
    result = conn.execute(
        accounts.insert().values(created_at=now, updated_at=now, **values)
    )
    return int(result.inserted_primary_key[0])


def update(conn: Connection, account_id: int, *, now: datetime, **values: object) -> None:
    conn.execute(
        accounts.update().where(accounts.c.id == account_id).values(updated_at=now, **values)
    )


def bind_phone(conn: Connection, account_id: int, phone: str, *, now: datetime) -> None:
    update(conn, account_id, now=now, phone=phone)


def set_pin_hash(conn: Connection, account_id: int, pin_hash: str, *, now: datetime) -> None:
    update(conn, account_id, now=now, pin_hash=pin_hash)


def record_pin_failure(conn: Connection, account_id: int, *, now: datetime) -> None:
    conn.execute(pin_failures.insert().values(account_id=account_id, at=now))


def pin_failures_since(conn: Connection, account_id: int, since: datetime) -> int:
    q = sa.select(sa.func.count()).where(
        pin_failures.c.account_id == account_id, pin_failures.c.at > since
    )
    return int(conn.execute(q).scalar_one())


_CLEAR_PIN_FAILURES = FastStatement(
    pin_failures.delete().where(pin_failures.c.account_id == sa.bindparam("account_id")))


def clear_pin_failures(conn: Connection, account_id: int) -> None:
    _CLEAR_PIN_FAILURES.run(conn, {"account_id": account_id})


def lock_pin(conn: Connection, account_id: int, until: datetime, *, now: datetime) -> None:
    update(conn, account_id, now=now, pin_locked_until=until)

