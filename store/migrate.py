"""Schema migrations, run in code on every start (idempotent)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

import migrations
from store.db import WRITE_OPTION, make_engine, normalise_url

# Arbitrary constant key for pg_advisory_xact_lock: several gateway instances starting at once
# must not run the same migration concurrently.
_PG_MIGRATION_LOCK = 0x736D7367  # "smsg"


def alembic_config(url: str | sa.URL | None = None) -> Config:
    """An alembic Config pointing at the bundled migrations package (no alembic.ini)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).resolve().parent))
    if url is not None:
        # '%' must be doubled for configparser interpolation (URL-encoded options use it).
        rendered = normalise_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


def upgrade_engine(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision`, in one transaction."""
    cfg = alembic_config()
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision`; a no-op when already there."""
    engine = make_engine(url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at, None when never migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
