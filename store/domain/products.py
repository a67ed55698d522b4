"""The product catalogue."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from common.fields import product_code
from store.fastsql import FastStatement
from store.models import products

# Every ORD, MOD, SAL and STK looks its products up (store/fastsql.py).
_BY_CODES: dict[int, FastStatement] = {}


def by_codes(conn: Connection, codes: Iterable[str]) -> dict[str, Row]:
    """Products (active or not) by code; unknown codes are simply absent."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    stmt = _BY_CODES.get(len(wanted))
    if stmt is None:  # one compiled statement per list length (an SMS holds a few dozen)
        stmt = _BY_CODES[len(wanted)] = FastStatement(sa.select(products).where(
            products.c.code.in_([sa.bindparam(f"c{i}") for i in range(len(wanted))])))
    rows = stmt.all(conn, {f"c{i}": code for i, code in enumerate(wanted)})
    return {r.code: r for r in rows}


def by_code(conn: Connection, code: str) -> Row | None:
    return conn.execute(sa.select(products).where(products.c.code == code)).first()


def name(product: Row, lang: str) -> str:
    return product.name_zh if lang == "zh" else product.name_en


def insert(conn: Connection, *, code: str, **values: object) -> str:
    """Add a product; every entry point (API, demo data, imports) comes through here, so the
    code is checked by the one product-code rule (`common.fields.product_code`: 4 digits,
    what an SMS can order). Returns the code as stored."""
    code = product_code(code)
    conn.execute(products.insert().values(code=code, **values))
    return code
