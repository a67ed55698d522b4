"""Shared fixtures. Database fixtures: every store test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa

# Every gateway a test starts listens on ephemeral ports unless the test says otherwise, so
# tests never collide with each other or with a developer's running `smsgw up`.
os.environ.setdefault("SMSGW_SMPP_SERVER_PORT", "0")

from store import Store
from store.db import make_engine
from tests.pg_template import PgTemplate, schema_url


def _copy_migrated_templates() -> None:
    """Every new database starts as a copy of one migrated once per test run.

    Running the migrations costs about 0.3 s an SQLite database and a second a PostgreSQL
    schema, and the suite makes hundreds of them; an SQLite copy costs a millisecond, a
    PostgreSQL one (tests/pg_template.py) is made ahead in the background. Only a brand-new
    SQLite file or an empty PostgreSQL schema going to "head" is copied (the migration tests
    that stop at an older revision still run the migrations themselves), and each template
    itself is made by the real migrations, so the schema is the same.
    """
    import atexit
    import functools
    import shutil
    import tempfile
    from pathlib import Path

    import store.migrate as migrate

    real_upgrade_engine = migrate.upgrade_engine
    template: list[Path] = []

    def template_file() -> Path:
        if not template:
            folder = Path(tempfile.mkdtemp(prefix="smsgw-template-"))
            atexit.register(shutil.rmtree, folder, True)
            path = folder / "template.db"
            engine = make_engine(f"sqlite:///{path}")
            try:
                real_upgrade_engine(engine)
            finally:
                engine.dispose()  # the last connection closing checkpoints the WAL
            template.append(path)
        return template[0]

    # functools.wraps keeps the real one reachable as __wrapped__ (tests/store/test_pg_template)
    @functools.wraps(real_upgrade_engine)
    def upgrade_engine(engine: sa.Engine, revision: str = "head") -> None:
        db = engine.url.database
        if revision == "head" and engine.dialect.name == "sqlite":
            if db and db != ":memory:" and not os.path.exists(db):
                shutil.copyfile(template_file(), db)
                return  # a copy of a database the real migrations brought to head
        elif (revision == "head" and engine.dialect.name == "postgresql"
              and _pg_template().copy_into_empty_schema(engine, migrate._PG_MIGRATION_LOCK)):
            return
        # Anything else (an older revision, a database that exists): the real migrations,
        # a no-op when it is at head already.
        real_upgrade_engine(engine, revision)

    migrate.upgrade_engine = upgrade_engine  # type: ignore[assignment]


_copy_migrated_templates()


def _session_pin_key_file() -> str:
    """One PIN key file for the whole run (commands/pins.py): every gateway a test starts and
    every hash_pin outside a gateway use it, unless a test names another."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path

    from commands.pins import create_key_file

    tmp = tempfile.mkdtemp(prefix="smsgw-test-pin-key-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    path = Path(tmp) / "pin.key"
    create_key_file(path)
    return str(path)


if "SMSGW_PIN_KEY_FILE" not in os.environ:
    os.environ["SMSGW_PIN_KEY_FILE"] = _session_pin_key_file()


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------

DEFAULT_TEST_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

_pg_templates: list[PgTemplate] = []
_pg_unreachable: str | None = None  # cached reason, so a missing server costs one timeout
_pg_checked = False


def _pg_base_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_PG_URL)


def _pg_template() -> PgTemplate:
    """The run's PostgreSQL template and schema maker (tests/pg_template.py)."""
    if not _pg_templates:
        import atexit

        import store.migrate as migrate

        real_upgrade_engine = migrate.upgrade_engine.__wrapped__  # type: ignore[attr-defined]
        _pg_templates.append(PgTemplate(_pg_base_url(), real_upgrade_engine))
        atexit.register(_pg_templates[0].close)
    return _pg_templates[0]


def _require_postgres() -> None:
    """Skip when PostgreSQL is unreachable, but fail in CI: it must never be skipped there."""
    global _pg_checked, _pg_unreachable
    if not _pg_checked:
        _pg_checked = True
        engine = make_engine(_pg_base_url(), connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            _pg_unreachable = f"PostgreSQL at {_pg_base_url()} unreachable: {exc}"
        finally:
            engine.dispose()
    if _pg_unreachable is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(_pg_unreachable + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(_pg_unreachable)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards.

    Everything unqualified (tables, alembic_version) lands in that schema, so tests are
    isolated from each other and from whatever else lives in the database.
    """
    _require_postgres()
    schema = f"t_{uuid.uuid4().hex}"
    schemas = _pg_template()
    schemas.create_schema(schema)
    try:
        yield schema_url(_pg_base_url(), schema)
    finally:
        schemas.drop_later(schema)  # DROP ... CASCADE off the tests' critical path


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'smsgw.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """A migrated, started Store on ``db_url``; closed (writer drained) afterwards."""
    s = Store.open(db_url)
    try:
        yield s
    finally:
        await s.close()
