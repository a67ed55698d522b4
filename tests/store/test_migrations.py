from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store.db import make_engine
from store.migrate import current_revision, head_revision, upgrade
from store.models import metadata

TABLES = {"alembic_version", *metadata.tables}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_then_noop(db_url: str) -> None:
    assert current_revision(db_url) is None
    assert _tables(db_url) == set()
    upgrade(db_url)
    head = head_revision()
    assert head is not None and current_revision(db_url) == head
    assert _tables(db_url) == TABLES
    upgrade(db_url)  # every start calls it again
    assert current_revision(db_url) == head
    assert _tables(db_url) == TABLES


def test_database_from_the_first_release_upgrades_with_its_data(db_url: str) -> None:
    """A store created at 0001 (issue 2's schema) keeps its rows through every migration."""
    upgrade(db_url, "0001")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO inbound_messages (connection, dedup_key, source_addr, dest_addr,"
                " text, data_coding, esm_class, short_message, received_at, status)"
                " VALUES ('smsc1', 'k1', '8613800000001', '10690', 'HELP', 0, 0, 'HELP',"
                " '2026-11-24 10:00:00', 'received')")
        upgrade(db_url)
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT text, status, concat_total FROM inbound_messages").one()
    finally:
        engine.dispose()
    assert tuple(row) == ("HELP", "received", None)


def test_migration_matches_models(db_url: str) -> None:
    """The hand-written migration and store.models describe the same schema."""
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_receipts_owed_before_0009_keep_their_message_id(db_url: str) -> None:
    """0009 keys owed receipts by the id the application got: old rows get their MT id."""
    upgrade(db_url, "0008_mo_identity")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO upstream_outbox (system_id, kind, message_id, payload, created_at,"
                " attempts) VALUES ('crm', 'receipt', 42, '{}', '2026-11-24 10:00:00', 0)")
        upgrade(db_url)
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT message_id, receipt_for FROM upstream_outbox").one()
    finally:
        engine.dispose()
    assert tuple(row) == (42, "42")
