"""Console users: people who log in to the web console with a username and password.

Passwords are hashed with scrypt (hashlib, the standard library): memory-hard, so a stolen
table cannot be searched fast on GPUs, and no new dependency (argon2-cffi would do the same
job with a C extension to build and keep). The stored form names its parameters
(``scrypt$n$r$p$salt$hash``) so they can be raised later without breaking old hashes.
Hashing takes ~50 ms and 16 MiB: callers on the event loop run it in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.admin import ROLE_RANK
from store.models import CONSOLE_LANGS, console_users

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB per hash
MIN_PASSWORD = 10
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
FIRST_USER = "admin"


class UserError(ValueError):
    """A user change that cannot be made; the message says why and what to do."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt),
                             n=int(n), r=int(r), p=int(p), maxmem=64 * 1024 * 1024,
                             dklen=len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


# A valid hash of nothing anyone can type: checked when the username is unknown, so a wrong
# name costs the same time as a wrong password (no user enumeration by timing).
_DUMMY = hash_password(secrets.token_urlsafe(16))


def check_password_rules(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    return password


def generate_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 bits


def _check(username: str, role: str, lang: str) -> None:
    if not USERNAME_RE.match(username):
        raise UserError("a username is 1-64 letters, digits or _ . @ -")
    if role not in ROLE_RANK:
        raise UserError(f"role must be one of {', '.join(ROLE_RANK)}, not {role!r}")
    if lang not in CONSOLE_LANGS:
        raise UserError(f"lang must be one of {', '.join(CONSOLE_LANGS)}, not {lang!r}")


_PUBLIC = [c for c in console_users.c if c.name != "password_hash"]


def create_user(conn: Connection, *, username: str, password_hash: str, role: str,
                now: datetime, lang: str = "zh", created_by: str | None = None) -> int:
    """Create a user from an already computed hash (hash outside the write transaction)."""
    _check(username, role, lang)
    if get_by_name(conn, username) is not None:
        raise UserError(f"a user {username!r} exists already")
    return int(conn.execute(
        console_users.insert().values(username=username, password_hash=password_hash,
                                      role=role, lang=lang, session_epoch=0, created_at=now,
                                      created_by=created_by)
        .returning(console_users.c.id)).scalar_one())


def get_by_name(conn: Connection, username: str) -> dict[str, Any] | None:
    """The user with its password hash (for login only)."""
    row = conn.execute(sa.select(console_users)
                       .where(console_users.c.username == username)).first()
    return None if row is None else dict(row._mapping)


def get(conn: Connection, user_id: int) -> dict[str, Any] | None:
    """The user without its password hash."""
    row = conn.execute(sa.select(*_PUBLIC).where(console_users.c.id == user_id)).first()
    return None if row is None else dict(row._mapping)


def list_users(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in
            conn.execute(sa.select(*_PUBLIC).order_by(console_users.c.username))]


def dummy_hash() -> str:
    return _DUMMY


def _update(conn: Connection, user_id: int, **values: Any) -> bool:
    done = conn.execute(console_users.update().where(console_users.c.id == user_id)
                        .values(**values))
    return bool(done.rowcount)


def end_sessions(conn: Connection, user_id: int) -> bool:
    """Invalidate every session cookie of the user (logout, password change, disable)."""
    return _update(conn, user_id, session_epoch=console_users.c.session_epoch + 1)


def set_password_hash(conn: Connection, user_id: int, password_hash: str, *,
                      now: datetime) -> bool:
    return _update(conn, user_id, password_hash=password_hash, password_changed_at=now,
                   session_epoch=console_users.c.session_epoch + 1)


def set_disabled(conn: Connection, user_id: int, *, now: datetime | None) -> bool:
    """Disable (now) or re-enable (None) a user; disabling ends its sessions."""
    return _update(conn, user_id, disabled_at=now,
                   session_epoch=console_users.c.session_epoch + 1)


def set_lang(conn: Connection, user_id: int, lang: str) -> bool:
    if lang not in CONSOLE_LANGS:
        raise UserError(f"lang must be one of {', '.join(CONSOLE_LANGS)}")
    return _update(conn, user_id, lang=lang)


def record_login(conn: Connection, user_id: int, *, now: datetime) -> None:
    _update(conn, user_id, last_login_at=now)


def create_first_admin(conn: Connection, *, password_hash: str, now: datetime,
                       lang: str = "zh") -> int | None:
    """For `smsgw up`: the ``admin`` user when no console user exists yet (else None)."""
    if conn.execute(sa.select(sa.func.count()).select_from(console_users)).scalar_one():
        return None
    return create_user(conn, username=FIRST_USER, password_hash=password_hash, role="admin",
                       now=now, lang=lang, created_by="smsgw up")
