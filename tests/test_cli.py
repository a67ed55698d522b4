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


def test_send_refuses_what_the_api_refuses(tmp_path: Path) -> None:
    """The same validators as POST /messages: nothing is queued, the reason is printed."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert smsgw("db", "upgrade", "--database-url", url).returncode == 0
    for msisdn, text, reason in [
        ("12ab", "", "not a phone number"),
        ("8613800000009", "", "text is empty"),
        ("8613800000009", "   ", "text is empty"),
        ("8613800000009", "x" * 1531, "at most 10 parts"),
        ("+86 138", "hello", "too short for a phone number"),
    ]:
        out = smsgw("send", msisdn, text, env_db=url)
        assert out.returncode == 2, (msisdn, text, out.stdout)
        assert "refused, nothing queued" in out.stderr and reason in out.stderr, out.stderr
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count = conn.exec_driver_sql("SELECT count(*) FROM outbound_messages").scalar()
    engine.dispose()
    assert count == 0


def test_send_stores_the_canonical_number(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert smsgw("db", "upgrade", "--database-url", url).returncode == 0
    out = smsgw("send", "+86 138-0000-0009", "hi", env_db=url)
    assert out.returncode == 0, out.stderr
    assert "to 8613800000009" in out.stdout
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        dest = conn.exec_driver_sql("SELECT dest_addr FROM outbound_messages").scalar()
    engine.dispose()
    assert dest == "8613800000009"


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    out = smsgw("up", "--window", "0", "--database-url", f"sqlite:///{tmp_path / 'x.db'}")
    assert out.returncode != 0
    assert "bad configuration" in out.stderr and "window" in out.stderr
