"""Migration 0007_phones: existing numbers rewritten to the one form, collisions set aside in
phone_conflicts (never lost silently), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

from store.db import make_engine
from store.migrate import upgrade

AT = "'2026-11-24 10:00:00'"

# Rows as an 0006 database may hold them: numbers in several written forms.
ROWS_AT_0006 = [
    "INSERT INTO accounts (id, account_no, role, name, phone, created_at, updated_at) VALUES"
    f" (1, 'A1', 'retailer', 'plus form', '+8613800000001', {AT}, {AT}),"
    f" (2, 'A2', 'retailer', 'canonical', '8613800000001', {AT}, {AT}),"
    f" (3, 'A3', 'retailer', 'national', '13800000002', {AT}, {AT}),"
    f" (4, 'A4', 'retailer', 'dashes', '+86 138-0000-0003', {AT}, {AT}),"
    f" (5, 'A5', 'retailer', 'junk', 'abc', {AT}, {AT}),"
    f" (6, 'A6', 'retailer', 'idd older', '008613800000004', {AT}, {AT}),"
    f" (7, 'A7', 'retailer', 'plus newer', '+8613800000004', {AT}, {AT}),"
    f" (8, 'A8', 'subscriber', 'not registered', NULL, {AT}, {AT})",
    "INSERT INTO topics (id, code, name_zh, name_en) VALUES (1, 'OUTAGE', 'x', 'Outage')",
    "INSERT INTO subscriptions (id, phone, topic_id, window_start, window_end, created_at)"
    f" VALUES (1, '+8613800000001', 1, 8, 20, {AT}),"
    f" (2, '13800000001', 1, NULL, NULL, {AT}),"
    f" (3, '+8613700000001', 1, NULL, NULL, {AT})",
    f"INSERT INTO opt_outs (id, phone, at) VALUES (1, '+8613900000001', {AT}),"
    f" (2, '8613900000002', {AT}), (3, '13900000002', {AT})",
    "INSERT INTO phone_tags (id, phone, tag, created_at) VALUES"
    f" (1, '+8613800000001', 'vip', {AT}), (2, '8613800000001', 'vip', {AT}),"
    f" (3, '+8613800000001', 'new', {AT})",
    "INSERT INTO phone_changes (id, account_id, new_phone, code, expires_at, status,"
    f" created_at) VALUES (1, 2, '+86 136-0000-0099', '123456', {AT}, 'pending', {AT})",
    "INSERT INTO inbound_messages (id, connection, dedup_key, source_addr, dest_addr, text,"
    " data_coding, esm_class, short_message, received_at, status) VALUES"
    f" (1, 'smsc1', 'k1', '+8613800000001', '10690', 'HELP', 0, 0, 'HELP', {AT}, 'processed'),"
    f" (2, 'smsc1', 'k2', 'BANK', '10690', 'hi', 0, 0, 'hi', {AT}, 'processed'),"
    f" (3, 'smsc1', 'k3', '13800000001', '10690', 'BAL', 0, 0, 'BAL', {AT}, 'processed')",
    "INSERT INTO outbound_messages (id, priority, source_addr, dest_addr, text, created_at,"
    f" updated_at) VALUES (1, 1, '10690', '+8613800000001', 'hello', {AT}, {AT}),"
    f" (2, 1, '10690', '8613800000002', 'hello', {AT}, {AT})",
    "INSERT INTO broadcasts (id, name, target_kind, target, text, priority, status,"
    " created_at, updated_at) VALUES"
    " (1, 'b', 'list', '{\"numbers\": [\"+8613800000001\", \"13800000002\", \"BANK\"]}',"
    f" 'x', 3, 'scheduled', {AT}, {AT}),"
    " (2, 'g', 'group', '{\"group\": \"G\"}', 'x', 3, 'scheduled', " f"{AT}, {AT})",
]


@pytest.fixture
def migrated(db_url: str, caplog: pytest.LogCaptureFixture) -> sa.Engine:
    upgrade(db_url, "0006_upstream")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for sql in ROWS_AT_0006:
            conn.execute(sa.text(sql))
    with caplog.at_level(logging.WARNING, logger="smsgw.migrations"):
        upgrade(db_url, "0007_phones")
    yield engine
    engine.dispose()


def _all(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_accounts_rewritten_and_collisions_unbound_not_lost(migrated: sa.Engine) -> None:
    assert _all(migrated, "SELECT id, phone FROM accounts ORDER BY id") == [
        (1, None),               # collided with the canonical row 2: unbound, recorded
        (2, "8613800000001"),    # already canonical: keeps the number
        (3, "8613800000002"),
        (4, "8613800000003"),
        (5, "abc"),              # no phone number: left as it was, recorded
        (6, "8613800000004"),    # neither canonical: the oldest keeps it
        (7, None),
        (8, None),
    ]
    conflicts = _all(migrated, "SELECT table_name, column_name, row_id, old_value, canonical,"
                               " kept_row_id, action FROM phone_conflicts"
                               " WHERE table_name = 'accounts' ORDER BY row_id")
    assert conflicts == [
        ("accounts", "phone", 1, "+8613800000001", "8613800000001", 2, "unbound"),
        ("accounts", "phone", 5, "abc", None, None, "unparsable"),
        ("accounts", "phone", 7, "+8613800000004", "8613800000004", 6, "unbound"),
    ]
    (row,) = _all(migrated, "SELECT row FROM phone_conflicts WHERE row_id = 1 AND"
                            " table_name = 'accounts'")
    saved = json.loads(row[0])
    assert saved["account_no"] == "A1" and saved["phone"] == "+8613800000001"


def test_subscriptions_opt_outs_tags_merged_once(migrated: sa.Engine) -> None:
    assert _all(migrated, "SELECT id, phone, window_start FROM subscriptions ORDER BY id") == [
        (1, "8613800000001", 8), (3, "8613700000001", None)]
    assert _all(migrated, "SELECT id, phone FROM opt_outs ORDER BY id") == [
        (1, "8613900000001"), (2, "8613900000002")]
    assert _all(migrated, "SELECT id, phone, tag FROM phone_tags ORDER BY id") == [
        (2, "8613800000001", "vip"), (3, "8613800000001", "new")]
    removed = _all(migrated, "SELECT table_name, row_id, kept_row_id, action FROM"
                             " phone_conflicts WHERE action = 'removed' ORDER BY table_name")
    assert removed == [("opt_outs", 3, 2, "removed"), ("phone_tags", 1, 2, "removed"),
                       ("subscriptions", 2, 1, "removed")]
    (row,) = _all(migrated, "SELECT row FROM phone_conflicts WHERE table_name ="
                            " 'subscriptions'")
    assert json.loads(row[0])["phone"] == "13800000001"


def test_message_history_and_changes_rewritten(migrated: sa.Engine) -> None:
    assert _all(migrated, "SELECT new_phone FROM phone_changes") == [("8613600000099",)]
    assert _all(migrated, "SELECT source_addr, dest_addr FROM inbound_messages ORDER BY id") \
        == [("8613800000001", "10690"), ("BANK", "10690"), ("8613800000001", "10690")]
    assert _all(migrated, "SELECT source_addr, dest_addr FROM outbound_messages ORDER BY id") \
        == [("10690", "8613800000001"), ("10690", "8613800000002")]
    targets = dict(_all(migrated, "SELECT id, target FROM broadcasts"))
    assert json.loads(targets[1]) == {"numbers": ["8613800000001", "8613800000002", "BANK"]}
    assert json.loads(targets[2]) == {"group": "G"}


def test_collisions_are_logged(migrated: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    lines = [r.getMessage() for r in caplog.get_records("setup") if r.name == "smsgw.migrations"]
    assert any("accounts.phone row 1 '+8613800000001'" in x and "unbound" in x
               and "kept row 2" in x for x in lines), lines
    assert any("accounts.phone row 5 'abc'" in x and "unparsable" in x for x in lines), lines
    assert len(lines) == 6


def test_upgrade_to_head_after_0007(db_url: str, migrated: sa.Engine) -> None:
    upgrade(db_url)  # later migrations run over the rewritten rows
    assert _all(migrated, "SELECT phone FROM accounts WHERE id = 2") == [("8613800000001",)]
