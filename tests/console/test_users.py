"""Console users: the store (SQLite and PostgreSQL), `smsgw user`, and the first start."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway import users_cli
from store import admin, users
from store.store import Store


def test_password_hash_is_scrypt_and_salted() -> None:
    a, b = users.hash_password("same password"), users.hash_password("same password")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert users.verify_password("same password", a)
    assert not users.verify_password("Same password", a)
    assert not users.verify_password("x", "not a hash")


async def test_users_store(store: Store) -> None:
    now = datetime.now(UTC)
    h = users.hash_password("a long password")
    uid = await store.write(lambda c: users.create_user(
        c, username="li.na", password_hash=h, role="operator", now=now))
    with pytest.raises(users.UserError, match="exists"):
        await store.write(lambda c: users.create_user(
            c, username="li.na", password_hash=h, role="viewer", now=now))
    with pytest.raises(users.UserError, match="role"):
        await store.write(lambda c: users.create_user(
            c, username="x", password_hash=h, role="root", now=now))
    listed = await store.read(users.list_users)
    assert [u["username"] for u in listed] == ["li.na"]
    assert "password_hash" not in listed[0] and listed[0]["lang"] == "zh"
    epoch = listed[0]["session_epoch"]
    await store.write(lambda c: users.set_password_hash(c, uid, h, now=now))
    await store.write(lambda c: users.end_sessions(c, uid))
    got = await store.read(lambda c: users.get(c, uid))
    assert got is not None and got["session_epoch"] == epoch + 2
    await store.write(lambda c: users.set_disabled(c, uid, now=now))
    assert (await store.read(lambda c: users.get(c, uid)))["disabled_at"] is not None  # type: ignore[index]
    # The first admin only while no user exists.
    assert await store.write(lambda c: users.create_first_admin(
        c, password_hash=h, now=now)) is None


def _smsgw(*args: str, url: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--database-url", url],
                          capture_output=True, text=True, input=stdin, timeout=60)


def test_user_cli_add_list_passwd_disable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    out = _smsgw("user", "add", "wang", "--role", "viewer", url=url)
    assert out.returncode == 0, out.stderr
    assert "shown only now" in out.stdout
    out = _smsgw("user", "add", "wang", url=url)
    assert out.returncode == 1 and "exists already" in out.stderr
    out = _smsgw("user", "passwd", "wang", "--password-stdin", url=url, stdin="short\n")
    assert out.returncode == 1 and "at least 10" in out.stderr
    out = _smsgw("user", "passwd", "wang", "--password-stdin", url=url,
                 stdin="a good new password\n")
    assert out.returncode == 0, out.stderr
    assert _smsgw("user", "disable", "wang", url=url).returncode == 0
    listing = _smsgw("user", "list", url=url).stdout
    assert "wang" in listing and "viewer" in listing and "disabled" in listing
    store = Store.open(url)
    try:
        row = store.run(lambda c: users.get_by_name(c, "wang"))
        assert row is not None and users.verify_password("a good new password",
                                                         row["password_hash"])
        audit = store.run(lambda c: admin.list_audit(c, resource="console_user"))
        assert [a["path"] for a in audit][:3] == ["smsgw user disable", "smsgw user passwd",
                                                  "smsgw user add"]
        assert all("password_hash" not in (a["after"] or {}) for a in audit)
    finally:
        asyncio.run(store.close())


async def test_first_start_creates_admin_once(tmp_path: Path) -> None:
    store = await asyncio.to_thread(Store.open, f"sqlite:///{tmp_path / 'f.db'}")
    try:
        first = await users_cli.first_start_user(store)
        assert first is not None and first.username == "admin"
        assert first.path is not None and first.path.read_text().strip() == first.password
        assert oct(first.path.stat().st_mode & 0o777) == "0o600"
        assert "admin" in users_cli.first_start_banner(first, "http://127.0.0.1:8080/")
        row = await store.read(lambda c: users.get_by_name(c, "admin"))
        assert row is not None and row["role"] == "admin"
        assert users.verify_password(first.password, row["password_hash"])
        assert await users_cli.first_start_user(store) is None
    finally:
        await store.close()
