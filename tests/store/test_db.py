from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from store.db import StoreConfigError, default_database_url, make_engine, normalise_url


def test_sqlite_pragmas_and_parent_dir(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "smsgw.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
        assert path.exists()
    finally:
        engine.dispose()


async def test_store_file_is_wal_and_full(store) -> None:  # type: ignore[no-untyped-def]
    if store.dialect_name != "sqlite":
        value = store.run(lambda c: c.exec_driver_sql("SHOW synchronous_commit").scalar())
        assert value == "on"
        return

    def pragmas(c: sa.Connection) -> tuple[str, int]:
        return (
            c.exec_driver_sql("PRAGMA journal_mode").scalar(),
            c.exec_driver_sql("PRAGMA synchronous").scalar(),
        )

    assert await store.read(pragmas) == ("wal", 2)
    assert await store.write(pragmas) == ("wal", 2)


def test_postgres_url_rewritten_to_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@h/db",
        "postgresql+asyncpg://u@h/db",
        "sqlite+aiosqlite:///x.db",
        "sqlite://",
        "not a url",
    ],
)
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(StoreConfigError):
        make_engine(url)


def test_default_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@y/z")
    assert default_database_url() == "postgresql://x@y/z"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_database_url() == f"sqlite:///{tmp_path}/smsgw/smsgw.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_database_url() == f"sqlite:///{tmp_path}/.local/share/smsgw/smsgw.db"
