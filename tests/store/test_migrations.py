from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store.db import make_engine
from store.migrate import current_revision, head_revision, upgrade
from store.models import metadata

TABLES = {
    "alembic_version",
    "inbound_messages",
    "outbound_messages",
    "outbound_parts",
    "message_events",
    "pending_receipts",
}


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
    assert current_revision(db_url) == head_revision() == "0001"
    assert _tables(db_url) == TABLES
    upgrade(db_url)  # every start calls it again
    assert current_revision(db_url) == "0001"
    assert _tables(db_url) == TABLES


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
