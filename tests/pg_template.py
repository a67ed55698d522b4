"""New PostgreSQL test schemas made from one schema migrated once per test run.

Running the migrations into a fresh schema costs about a second on a loaded machine and
the suite makes hundreds of schemas. Instead one template schema is migrated by the real
migrations, ``pg_dump`` captures it (DDL *and* rows: alembic_version, sequence positions,
anything a migration inserts) and every new schema replays that script, about a quarter of
the cost, and that mostly in a background thread that keeps schemas ready ahead.
tests/store/test_pg_template.py checks copies against a freshly migrated schema.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import uuid
import warnings
from collections.abc import Callable
from urllib.parse import quote

import sqlalchemy as sa

from store.db import make_engine

# Only the schemas the test fixtures make (pg_url's t_<hex>) are ever filled or replaced: never
# "public" or anything else a URL may point at.
_TEST_SCHEMA = re.compile(r"t_[0-9a-f]{32}")
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
    """The migrated template's replay script, made on first use; a background thread that
    keeps ``ahead`` schemas filled from it ready to be renamed into place, and another that
    drops the schemas tests are done with. The database work of making and dropping schemas
    then overlaps the tests instead of adding to their time."""

    def __init__(self, base: str, upgrade: Callable[[sa.Engine], None], ahead: int = 2) -> None:
        self._base = base
        self._upgrade = upgrade  # the real store.migrate.upgrade_engine
        self._ahead = ahead
        self._script: str | None = None
        self._unavailable: str | None = None
        self._made = threading.Lock()
        self._cond = threading.Condition()
        self._ready: list[str] = []  # filled schemas nobody uses yet
        self._to_drop: list[str] = []
        self._failed: str | None = None  # the background thread's error: it stopped
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._admin_engine: sa.Engine | None = None

    def _admin(self) -> sa.Engine:
        """One engine for the run's CREATE/DROP SCHEMA (a pooled connection, not a new one
        per test)."""
        with self._made:
            if self._admin_engine is None:
                self._admin_engine = make_engine(self._base)
            return self._admin_engine

    def create_schema(self, schema: str) -> None:
        """An empty schema (pg_url's)."""
        with self._admin().begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def script(self) -> str | None:
        """The replay script, or None when pg_dump cannot make one (the caller migrates)."""
        self._admin()
        with self._made:
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
        assert self._admin_engine is not None
        with self._admin_engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{template}"'))
        try:
            engine = make_engine(schema_url(self._base, template))
            try:
                self._upgrade(engine)
            finally:
                engine.dispose()
            return replay_script(_pg_dump(self._base, template), template)
        finally:
            with self._admin_engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{template}" CASCADE'))

    def copy_into_empty_schema(self, engine: sa.Engine, lock_key: int) -> bool:
        """Fill the engine's current schema from the template if that schema is empty.

        Holds the migration advisory lock like a real upgrade, so a concurrent upgrade of the
        same schema waits and then finds it at head. A schema made ahead replaces the empty
        one (dropped, the other renamed to its name, in one transaction: references inside
        the schema are by OID, so the rename changes nothing else); with none ready the
        script runs here. False: nothing done, migrate instead.
        """
        with engine.connect() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
        if schema is None or not _TEST_SCHEMA.fullmatch(schema):
            return False
        # Before taking the lock: making the template takes it too.
        script = self.script()
        if script is None:
            return False
        self.start()
        with engine.connect() as conn, conn.begin():
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
            occupied = conn.execute(sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = n.oid)"
                " OR EXISTS (SELECT 1 FROM pg_type WHERE typnamespace = n.oid)"
                " OR EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = n.oid)"
                " FROM pg_namespace n WHERE n.nspname = :s"), {"s": schema}).scalar()
            if occupied:
                return False
            ready = self._take()
            if ready is None:
                fill(conn, script, schema)
            else:
                try:
                    # Not CASCADE: should anything have appeared in it, this fails.
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}"'))
                    conn.execute(sa.text(f'ALTER SCHEMA "{ready}" RENAME TO "{schema}"'))
                except BaseException:
                    self.drop_later(ready)
                    raise
        return True

    def wait_ready(self, timeout: float) -> bool:
        """Wait until a schema made ahead is ready (for the test of this module)."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._ready) or self._failed is not None,
                                       timeout) and bool(self._ready)

    def drop_later(self, schema: str) -> None:
        """DROP SCHEMA ... CASCADE in the background (at the latest when the run ends)."""
        self.start()
        with self._cond:
            self._to_drop.append(schema)
            self._cond.notify_all()

    def close(self, timeout: float = 120.0) -> None:
        """Finish the pending drops and drop the schemas made ahead (end of the run)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)  # the builder stops; the dropper stops once it is idle
        with self._cond:
            leftover, self._ready, self._to_drop = self._ready + self._to_drop, [], []
        if self._admin_engine is not None:
            # What piled up: several connections at once. Plain threads: this runs at exit,
            # when concurrent.futures takes no more work.
            def drop_some(schemas: list[str]) -> None:
                for schema in schemas:
                    self._drop(schema)

            workers = [threading.Thread(target=drop_some, args=(leftover[i::3],))
                       for i in range(3)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout)
            self._admin_engine.dispose()
            self._admin_engine = None

    def _take(self) -> str | None:
        with self._cond:
            ready = self._ready.pop(0) if self._ready else None
            self._cond.notify_all()  # make the next one
            return ready

    def start(self) -> None:
        """Start the background threads: one makes schemas (once the script exists), one
        drops them, so neither waits for the other."""
        with self._cond:
            if not self._threads:
                self._threads = [
                    threading.Thread(target=self._build_ahead, name="pg-template-build",
                                     daemon=True),
                    threading.Thread(target=self._drop_behind, name="pg-template-drop",
                                     daemon=True)]
                for thread in self._threads:
                    thread.start()

    def _build_ahead(self) -> None:
        admin = self._admin()
        while True:
            with self._cond:
                while not (self._stopping or self._want_one()):
                    self._cond.wait()
                if self._stopping:
                    return
                assert self._script is not None
                script, build = self._script, f"t_{uuid.uuid4().hex}"
            try:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'CREATE SCHEMA "{build}"'))
                    fill(conn, script, build)
            except Exception as exc:  # e.g. the database went away: make them inline
                with self._cond:
                    self._failed = f"{type(exc).__name__}: {exc}"
                continue
            with self._cond:
                self._ready.append(build)
                self._cond.notify_all()

    def _drop_behind(self) -> None:
        while True:
            with self._cond:
                while not (self._stopping or self._to_drop):
                    self._cond.wait()
                if self._stopping:
                    return  # close() drops the rest, several at a time
                drop = self._to_drop.pop(0)
            self._drop(drop)

    def _drop(self, schema: str) -> None:
        try:
            with self._admin().begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        except Exception as exc:
            warnings.warn(f"could not drop test schema {schema}: {exc}", stacklevel=1)

    def _want_one(self) -> bool:
        return (self._failed is None and self._script is not None
                and len(self._ready) < self._ahead)


def fill(conn: sa.Connection, script: str, schema: str) -> None:
    """Run the replay script into ``schema`` (existing, empty) in ``conn``'s transaction.

    Several statements in one round trip: psycopg sends a parameterless query as a simple
    query.
    """
    conn.connection.driver_connection.execute(  # type: ignore[union-attr]
        script.replace(_PLACEHOLDER, f'"{schema}"'))
