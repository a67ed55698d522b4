"""A PostgreSQL test schema copied from the migrated template (tests/pg_template.py) is the
same as one the migrations make: tables, columns, defaults, sequences and where they stand,
constraints, indexes and every row a migration inserted."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

import store.migrate as migrate
from store.db import make_engine
from store.migrate import upgrade
from tests.conftest import _pg_base_url, _pg_template
from tests.pg_template import _pg_dump, fill, schema_url

pytestmark = pytest.mark.postgres

# The real store.migrate.upgrade_engine, under the test run's copying hook (tests/conftest.py).
real_upgrade_engine: Callable[..., None] = migrate.upgrade_engine.__wrapped__  # type: ignore[attr-defined]
# ... and not a second hook (were conftest ever imported twice, "migrated" would be a copy).
assert real_upgrade_engine.__code__.co_filename == migrate.__file__


@pytest.fixture
def new_schema(pg_url: str) -> Iterator[Callable[[], str]]:
    """Makes empty schemas (pg_url first checks PostgreSQL is there); dropped afterwards."""
    base = _pg_base_url()
    admin = make_engine(base)
    made: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        made.append(name)
        return name

    try:
        yield make
    finally:
        with admin.begin() as conn:
            for name in made:
                conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def _catalog(schema: str) -> dict[str, Any]:
    """The schema as the catalog describes it, with its own name taken out."""
    queries = {
        "columns": """
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.attidentity, pg_get_expr(d.adbin, d.adrelid)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE c.relnamespace = CAST(:s AS regnamespace) AND a.attnum > 0
              AND NOT a.attisdropped AND c.relkind = 'r'
            ORDER BY 1, 2""",
        "constraints": """
            SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            WHERE k.connamespace = CAST(:s AS regnamespace) ORDER BY 1, 2""",
        "indexes": """
            SELECT tablename, indexname, indexdef FROM pg_indexes
            WHERE schemaname = :s ORDER BY 1, 2""",
        "sequences": """
            SELECT sequencename, data_type::text, start_value, increment_by, min_value,
                   max_value, cycle, cache_size, last_value
            FROM pg_sequences WHERE schemaname = :s ORDER BY 1""",
        "owned_by": """
            SELECT s.relname, t.relname, a.attname
            FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
            JOIN pg_class t ON t.oid = d.refobjid
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
            WHERE s.relnamespace = CAST(:s AS regnamespace) AND d.deptype IN ('a', 'i')
            ORDER BY 1""",
        "relations": """
            SELECT relname, relkind::text, relpersistence::text FROM pg_class
            WHERE relnamespace = CAST(:s AS regnamespace) ORDER BY 1""",
    }
    engine = make_engine(_pg_base_url())
    try:
        with engine.connect() as conn:
            out: dict[str, Any] = {
                name: [tuple(str(v).replace(schema, "<s>") for v in row)
                       for row in conn.execute(sa.text(q), {"s": schema})]
                for name, q in queries.items()}
            tables = [r[0] for r in out["relations"] if r[1] == "r"]
            out["rows"] = {
                t: sorted(map(repr, conn.execute(sa.text(f'SELECT * FROM "{schema}"."{t}"'))))
                for t in tables}
    finally:
        engine.dispose()
    return out


def _reparsed_checks(schema: str) -> dict[str, str]:
    """Each CHECK constraint's text as PostgreSQL reads it back from its own deparsed text.

    The one thing a dump-and-replay does not keep to the letter: a check written as
    `lang IN ('zh', 'en')` deparses as `lang::text = ANY ((ARRAY[...])::text[])`, which parses
    to `ANY (ARRAY[('zh'::varchar)::text, ...])`, the same test spelled differently (the
    round trip every pg_dump and restore makes). Re-reading a copy's text changes nothing.
    """
    engine = make_engine(_pg_base_url())
    out: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            checks = conn.execute(sa.text(
                "SELECT c.relname, pg_get_constraintdef(k.oid) FROM pg_constraint k"
                " JOIN pg_class c ON c.oid = k.conrelid"
                " WHERE k.connamespace = CAST(:s AS regnamespace) AND k.contype = 'c'"),
                {"s": schema}).all()
            conn.rollback()
            for table, text in checks:
                with conn.begin() as tx:
                    conn.execute(sa.text(
                        f'CREATE TEMP TABLE reparse (LIKE "{schema}"."{table}")'))
                    conn.execute(sa.text(f"ALTER TABLE reparse ADD CONSTRAINT k {text}"))
                    out[text] = conn.execute(sa.text(
                        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                        " WHERE conrelid = CAST('reparse' AS regclass)")).scalar_one()
                    tx.rollback()
    finally:
        engine.dispose()
    return out


def _described(schema: str) -> tuple[dict[str, Any], list[str]]:
    """The catalog's and pg_dump's view of the schema, CHECK texts re-read (see above)."""
    reparsed = _reparsed_checks(schema)
    catalog = _catalog(schema)
    catalog["constraints"] = [(*row[:3], reparsed[row[3]]) if row[2] == "c" else row
                              for row in catalog["constraints"]]
    dump = _pg_dump(_pg_base_url(), schema)
    for text, again in reparsed.items():
        dump = dump.replace(text, again)
    # \restrict carries a random key per dump.
    lines = [line for line in dump.replace(schema, "<s>").splitlines()
             if not line.startswith("\\")]
    return catalog, lines


def test_copied_schema_is_the_migrated_schema(new_schema: Callable[[], str]) -> None:
    migrated, filled, renamed, hooked = new_schema(), new_schema(), new_schema(), new_schema()
    base = _pg_base_url()
    lock = migrate._PG_MIGRATION_LOCK

    engine = make_engine(schema_url(base, migrated))
    try:
        real_upgrade_engine(engine)  # all the migrations, no template
    finally:
        engine.dispose()

    # The run's template (tests/conftest.py): its script replayed into the empty schema, the
    # way a schema is filled when none made ahead is ready...
    template = _pg_template()
    script = template.script()
    assert script is not None
    engine = make_engine(schema_url(base, filled))
    try:
        with engine.begin() as conn:
            fill(conn, script, filled)
    finally:
        engine.dispose()

    # ... and a schema made ahead in the background, renamed into place.
    template.start()
    assert template.wait_ready(60)
    before = _namespace_oid(renamed)
    engine = make_engine(schema_url(base, renamed))
    try:
        assert template.copy_into_empty_schema(engine, lock)
    finally:
        engine.dispose()
    assert _namespace_oid(renamed) != before  # it was one made ahead

    # The way every store test's schema is made: by one of the two above.
    upgrade(schema_url(base, hooked))
    assert _catalog(hooked)["rows"]["alembic_version"] == [repr((migrate.head_revision(),))]

    # pg_dump mostly waits on the server: side by side.
    with ThreadPoolExecutor(3) as pool:
        [(expected, expected_dump), *copies] = pool.map(_described, [migrated, filled, renamed])
    assert expected["rows"]["alembic_version"] == [repr((migrate.head_revision(),))]
    assert {"S", "i", "r"} <= {r[1] for r in expected["relations"]}
    assert any(row[2] == "c" for row in expected["constraints"])
    assert any(row[5].startswith("nextval(") for row in expected["columns"])
    assert len(copies) == 2
    for catalog, dump in copies:
        assert catalog == expected
        assert dump == expected_dump


def _namespace_oid(schema: str) -> int:
    engine = make_engine(_pg_base_url())
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT oid FROM pg_namespace WHERE nspname = :s"), {"s": schema}).scalar_one())
    finally:
        engine.dispose()


def test_a_schema_with_anything_in_it_is_left_to_the_migrations(
        new_schema: Callable[[], str]) -> None:
    schema = new_schema()
    engine = make_engine(schema_url(_pg_base_url(), schema))
    try:
        real_upgrade_engine(engine, "0001")
        before = _catalog(schema)
        assert not _pg_template().copy_into_empty_schema(engine, migrate._PG_MIGRATION_LOCK)
        assert _catalog(schema) == before
    finally:
        engine.dispose()
