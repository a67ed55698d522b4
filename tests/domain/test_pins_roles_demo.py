"""pins, roles.yaml, demo data, settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from commands import pins
from commands.demo import load_demo_data
from commands.parsed import Parsed
from commands.roles import RolesError, load_roles
from store.domain import accounts, settings
from store.models import accounts as accounts_t
from store.models import products, topics
from tests.domain.conftest import PH_R1, PIN, pin_hash, send


def test_hash_and_verify() -> None:
    encoded = pin_hash("123456")
    prefix, kid, salt, digest_hex = encoded.split("$")
    assert (prefix, kid) == ("hmac-sha256", pins.current_keys().current_id)
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest_hex)) == 32
    assert "123456" not in encoded
    assert pins.verify_pin("123456", encoded)
    assert not pins.verify_pin("123457", encoded)
    assert not pins.verify_pin("123456", "garbage")
    assert pins.hash_pin("123456") != encoded  # salted


def test_precheck(conn: Connection, world: dict) -> None:
    ord_ = Parsed("ORD", "en", "ORD", {"pin": PIN, "items": ()})
    assert pins.precheck(conn, PH_R1, ord_) is True
    assert pins.precheck(conn, PH_R1, Parsed("PIN", "en", "PIN", {"old": "1", "new": "2"})) \
        is False
    assert pins.precheck(conn, PH_R1, Parsed("BAL", "en", "BAL", {})) is None
    assert pins.precheck(conn, "nobody", ord_) is None
    reg = Parsed("REG", "en", "REG", {"account": "r4", "pin": "654321"})
    assert pins.precheck(conn, "nobody", reg) is True


def test_roles_bundled() -> None:
    roles = load_roles()
    assert roles.allows("retailer", "ORD") and not roles.allows("subscriber", "ORD")
    assert roles.allows("manager", "Q") and not roles.allows("manager", "ORD")
    for cmd in ("REG", "CFM", "HELP", "UNSUB", "SUB"):
        assert roles.is_public(cmd)
    assert roles.query("manager", "SALES").figures == ("units", "revenue", "margin")
    assert roles.query("retailer", "SALES").scope == "own"
    assert roles.query("retailer", "ROUTE") is None
    assert roles.query("subscriber", "STOCK") is None


def test_roles_custom_file(tmp_path: Path) -> None:
    f = tmp_path / "roles.yaml"
    f.write_text("public: [HELP]\nroles:\n  subscriber:\n    commands: [bal]\n    query:\n"
                 "      SALES: {scope: all, figures: [units]}\n")
    roles = load_roles(f)
    assert roles.allows("subscriber", "BAL") and not roles.allows("subscriber", "SUB")
    assert roles.query("subscriber", "SALES").scope == "all"
    f.write_text("roles:\n  x:\n    query:\n      SALES: {scope: galaxy}\n")
    with pytest.raises(RolesError):
        load_roles(f)


def test_settings(conn: Connection) -> None:
    assert settings.get(conn, "rules_version") is None
    assert settings.bump(conn, "rules_version") == 1
    assert settings.bump(conn, "rules_version") == 2
    settings.put(conn, "x", "y")
    assert settings.get(conn, "x") == "y"


def test_demo_phones_are_canonical_whatever_the_default_country(
        conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    from common import phones

    monkeypatch.setenv(phones.DEFAULT_COUNTRY_ENV, "44")
    phones.default_country.cache_clear()
    try:
        summary = load_demo_data(conn, now=datetime(2025, 1, 6, 4, 0, tzinfo=UTC))
    finally:
        monkeypatch.undo()
        phones.default_country.cache_clear()
    stored = sorted(p for p in conn.execute(sa.select(accounts_t.c.phone)).scalars() if p)
    assert stored == sorted(a["phone"] for a in summary["accounts"] if a["phone"][0] != "(")
    assert "8613800000001" in stored and all(p.isdigit() for p in stored)


def test_demo_data_idempotent_and_usable(conn: Connection) -> None:
    now = datetime(2025, 1, 6, 4, 0, tzinfo=UTC)
    summary = load_demo_data(conn, now=now)
    assert summary["created"] == {"products": 11, "accounts": 7, "topics": 3,
                                  "engagements": 2}
    assert load_demo_data(conn, now=now)["created"] == {"products": 0, "accounts": 0,
                                                        "topics": 0, "engagements": 0}
    assert conn.execute(sa.select(sa.func.count()).select_from(products)).scalar() == 11
    assert set(conn.execute(sa.select(topics.c.code)).scalars()) == {"OUTAGE", "BILL", "PROMO"}
    r1 = accounts.by_phone(conn, "8613800000001")
    assert r1.sms_ordering and r1.order_days == "" and r1.balance_cents == 500000
    mgr = accounts.by_phone(conn, "8613900000001")
    assert mgr.role == "manager"
    retailers = conn.execute(
        sa.select(accounts_t).where(accounts_t.c.role == "retailer")).all()
    assert len(retailers) == 4 and all(r.manager_id == mgr.id for r in retailers)
    r1004 = accounts.by_account_no(conn, "R1004")
    assert r1004.phone is None and pins.verify_pin("654321", r1004.pin_hash)
    # The walkthrough works: R1001 orders, R1004 registers.
    out = send(conn, "8613800000001", "ORD", "zh", now=now, pin="123456",
               items=[("1001", 2)])
    assert out.error is None, out.reply
    out = send(conn, "8613500000000", "REG", "en", now=now, account="R1004", pin="654321")
    assert out.error is None, out.reply
    out = send(conn, "8613900000001", "Q", "en", now=now, what="ROUTE", period=None, code=None)
    assert out.error is None and "4 retailers" in out.reply, out.reply
