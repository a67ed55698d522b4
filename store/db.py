"""Engine construction for the two supported databases (SQLite file, PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url

# Milliseconds SQLite waits on a lock held by another connection (e.g. a CLI run or the
# read pool) before raising "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000


class StoreConfigError(ValueError):
    """The database URL cannot be used by the store."""


class StoreUnavailable(RuntimeError):
    """The database cannot be reached (down, restarting, refusing connections, locked past
    the busy timeout). Nothing of the failed operation was committed: retry later.

    Callers that answer someone map it to "try again" (the API: 503; an MO: no
    deliver_sm_resp ESME_ROK, so the SMSC redelivers); facts that must be recorded are
    retried until the database is back (`Store.write_until_done`).
    """


# SQLite's OperationalError covers both "the database is busy or gone" and bugs ("no such
# table"); only the first kind is an outage. PostgreSQL (psycopg) raises OperationalError
# for connection and server-side availability failures only.
_SQLITE_OUTAGE = ("locked", "busy", "unable to open", "disk i/o", "readonly")


def is_unavailable(exc: BaseException) -> bool:
    """Is ``exc`` the database being unreachable (transient), rather than a bad statement?"""
    if isinstance(exc, StoreUnavailable):
        return True
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.OperationalError):
        if type(exc.orig).__module__.startswith("sqlite3"):
            text = str(exc.orig).lower()
            return any(word in text for word in _SQLITE_OUTAGE)
        return True
    return False


def unavailable(exc: BaseException) -> StoreUnavailable:
    """The StoreUnavailable to raise for ``exc``, with a message an operator can act on."""
    cause = getattr(exc, "orig", None) or exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return StoreUnavailable(f"database unavailable ({first}); nothing was saved, retry later")


def default_database_url() -> str:
    """`DATABASE_URL` if set, else an SQLite file under the XDG data directory."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(base) / 'smsgw' / 'smsgw.db'}"


def normalise_url(url: str | URL) -> URL:
    """Parse `url`, force the psycopg 3 driver for PostgreSQL, reject anything else."""
    try:
        u = make_url(url)
    except Exception as exc:  # ArgumentError for garbage strings
        raise StoreConfigError(f"invalid database URL {url!r}: {exc}") from exc
    backend, _, driver = u.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise StoreConfigError(
                f"unsupported SQLite driver {driver!r}: use sqlite:///path/to/file.db"
            )
        return u
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise StoreConfigError(
                f"unsupported PostgreSQL driver {driver!r}: use postgresql://... (psycopg 3)"
            )
        return u.set(drivername="postgresql+psycopg")
    raise StoreConfigError(
        f"unsupported database URL scheme {u.drivername!r}: "
        "use sqlite:///path/to/file.db or postgresql://user@host/db"
    )


# Execution option marking a connection that writes: on SQLite its transactions start with
# BEGIN IMMEDIATE, taking the write lock up front. A deferred transaction that reads first and
# writes later fails at once with SQLITE_BUSY (busy_timeout does not help) if another
# connection wrote in between.
WRITE_OPTION = "smsgw_writer"


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Turn off pysqlite's own BEGIN handling (it only begins before DML, so reads would run
    # outside the transaction); _sqlite_on_begin emits BEGIN itself. SQLAlchemy's documented
    # recipe for correct SQLite transactions.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: fsync the WAL on every commit, so "committed" survives power loss.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    # On the DBAPI cursor (store/fastsql.py): one per transaction, and SQLAlchemy's
    # execution machinery cost ten times the statement.
    from store.fastsql import run_raw

    run_raw(conn, "BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION)
            else "BEGIN")


def _pg_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Server default is usually "on", but a cluster may be tuned to "off"; the durability
    # promise must not depend on that.
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    try:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET synchronous_commit = on")
    finally:
        dbapi_conn.autocommit = autocommit


def make_engine(url: str | URL, **kwargs: Any) -> sa.Engine:
    """A sync engine configured for the store's durability rules."""
    u = normalise_url(url)
    if u.get_backend_name() == "sqlite":
        db = u.database
        if not db or db == ":memory:" or db.startswith("file:"):
            # In-memory databases cannot be shared by the writer and reader connections.
            raise StoreConfigError("the store needs an SQLite *file*: sqlite:///path/to/file.db")
        Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        engine = sa.create_engine(u, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        # A database host that stops answering must fail a connect, not hang the writer.
        kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
        engine = sa.create_engine(u, **kwargs)
        event.listen(engine, "connect", _pg_on_connect)
    return engine
