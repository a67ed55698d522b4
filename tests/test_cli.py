"""The command line, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa


def smsgw(*args: str, env_db: str | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    if env_db:
        env["DATABASE_URL"] = env_db
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=Path(__file__).parent.parent)


def test_help_lists_every_command() -> None:
    out = smsgw("--help")
    assert out.returncode == 0
    for command in ("up", "simulator", "send", "db"):
        assert command in out.stdout
    assert "HELP" in out.stdout  # the walkthrough hint


def test_each_subcommand_has_help() -> None:
    for args in (("up", "--help"), ("send", "--help"), ("db", "upgrade", "--help"),
                 ("simulator", "--help")):
        out = smsgw(*args)
        assert out.returncode == 0, out.stderr
        assert "usage: smsgw" in out.stdout


def test_db_upgrade_then_send_queues_a_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    out = smsgw("db", "upgrade", "--database-url", url)
    assert out.returncode == 0, out.stderr
    assert "schema at revision" in out.stdout
    out = smsgw("send", "8613800000009", "您好 hello", env_db=url)
    assert out.returncode == 0, out.stderr
    assert "queued message 1" in out.stdout
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT dest_addr, text, status, priority FROM outbound_messages").one()
    engine.dispose()
    assert tuple(row) == ("8613800000009", "您好 hello", "queued", 2)


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    out = smsgw("up", "--window", "0", "--database-url", f"sqlite:///{tmp_path / 'x.db'}")
    assert out.returncode != 0
    assert "bad configuration" in out.stderr and "window" in out.stderr
