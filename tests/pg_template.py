"""New PostgreSQL test schemas made from one schema migrated once per test run.

Running the 18 migrations into a fresh schema costs about a second on a loaded machine and
the suite makes hundreds of schemas. Instead one template schema is migrated by the real
migrations, ``pg_dump`` captures it (DDL *and* rows: alembic_version, sequence positions,
anything a migration inserts) and every new schema replays that script, about a quarter of
the cost. tests/store/test_pg_template.py checks a copy against a freshly migrated schema.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
import warnings
from collections.abc import Callable
from urllib.parse import quote

import sqlalchemy as sa

from store.db import make_engine

# Schema names the script can be retargeted to without any quoting worries (pg_url's t_<hex>).
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_PLACEHOLDER = "__smsgw_template_schema__"


def schema_url(base: str, schema: str) -> str:
    """``base`` with its search_path set to ``schema``: unqualified names land there."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


def _pg_dump(base: str, schema: str) -> str:
    """The plain-SQL dump of ``schema``: DDL and its rows as INSERTs."""
    u = sa.make_url(base)
    env = dict(os.environ)
    if u.password is not None:
        env["PGPASSWORD"] = str(u.password)
    args = ["pg_dump", f"--schema={schema}", "--column-inserts", "--no-owner",
            "--no-privileges", "--no-comments"]
    if u.host:
        args.append(f"--host={u.host}")
    if u.port:
        args.append(f"--port={u.port}")
    if u.username:
        args.append(f"--username={u.username}")
    args.append(f"--dbname={u.database}")
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {done.stderr.strip()}")
    return done.stdout


def replay_script(dump: str, template: str) -> str:
    """Turn ``pg_dump`` output for schema ``template`` into one SQL script for an existing,
    empty schema named by the placeholder.

    Everything in a dump is schema-qualified. Session settings become SET LOCAL so they end
    with the copy's transaction instead of sticking to a pooled connection; psql
    meta-commands (\\restrict), comments and the CREATE SCHEMA (the schema exists) go.
    """
    kept: list[str] = []
    for line in dump.splitlines():
        if not line or line.startswith(("--", "\\")):
            continue
        if line == f"CREATE SCHEMA {template};":
            continue
        if line.startswith("SET "):
            line = "SET LOCAL " + line[len("SET "):]
        kept.append(line.replace("set_config('search_path', '', false)",
                                 "set_config('search_path', '', true)"))
    script = "\n".join(kept)
    if re.search(r"^COPY ", script, re.MULTILINE):
        raise RuntimeError("pg_dump wrote COPY blocks; the replay needs --column-inserts")
    if f"{template}." not in script:
        raise RuntimeError(f"pg_dump output does not name schema {template}")
    return script.replace(template, _PLACEHOLDER)


class PgTemplate:
    """The migrated template's replay script, made on first use, for one test run."""

    def __init__(self, base: str, upgrade: Callable[[sa.Engine], None]) -> None:
        self._base = base
        self._upgrade = upgrade  # the real store.migrate.upgrade_engine
        self._script: str | None = None
        self._unavailable: str | None = None

    def script(self) -> str | None:
        """The replay script, or None when pg_dump cannot make one (the caller migrates)."""
        if self._script is None and self._unavailable is None:
            if shutil.which("pg_dump") is None:
                self._unavailable = "pg_dump not found"
            else:
                try:
                    self._script = self._make_script()
                except RuntimeError as exc:
                    self._unavailable = str(exc)
            if self._unavailable is not None:
                warnings.warn(f"PostgreSQL test schemas run every migration: "
                              f"{self._unavailable}", stacklevel=2)
        return self._script

    def _make_script(self) -> str:
        template = f"smsgw_template_{uuid.uuid4().hex}"
        admin = make_engine(self._base)
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{template}"'))
            try:
                engine = make_engine(schema_url(self._base, template))
                try:
                    self._upgrade(engine)
                finally:
                    engine.dispose()
                return replay_script(_pg_dump(self._base, template), template)
            finally:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{template}" CASCADE'))
        finally:
            admin.dispose()

    def copy_into_empty_schema(self, engine: sa.Engine, lock_key: int) -> bool:
        """Fill the engine's current schema from the template if that schema is empty.

        Holds the migration advisory lock like a real upgrade, so a concurrent upgrade of the
        same schema waits and then finds it at head. False: nothing done, migrate instead.
        """
        script = self.script()
        if script is None:
            return False
        with engine.connect() as conn, conn.begin():
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
            if schema is None or not _PLAIN_NAME.fullmatch(schema):
                return False
            occupied = conn.execute(sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = n.oid)"
                " OR EXISTS (SELECT 1 FROM pg_type WHERE typnamespace = n.oid)"
                " OR EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = n.oid)"
                " FROM pg_namespace n WHERE n.nspname = :s"), {"s": schema}).scalar()
            if occupied:
                return False
            # Several statements in one round trip: psycopg sends a parameterless query as a
            # simple query, inside this transaction.
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                script.replace(_PLACEHOLDER, f'"{schema}"'))
        return True
