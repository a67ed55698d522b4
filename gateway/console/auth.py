"""Console sessions: login, the signed session cookie, CSRF tokens, roles.

The session cookie is ``base64(json) . HMAC-SHA256`` with a secret kept in a 0600 file next
to the first admin API key (or ``SMSGW_CONSOLE_SECRET``); it is HttpOnly, SameSite=Strict and
lasts SESSION_HOURS. It carries the user id, the user's ``session_epoch`` (bumped by logout,
password change and disable, which ends every session of that user at once; so no session
table is needed) and a random CSRF token. Every form posts that token back; it is compared
in constant time. The login form has its own token in a short-lived pre-login cookie.

Wrong passwords are throttled per source address by the same FailureThrottle as wrong API
keys (gateway/auth_throttle.py), kind "console".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request

from gateway.api.deps import Actor
from gateway.api_keys_cli import _write_private, key_file_path
from gateway.auth_throttle import AuthLimits, FailureThrottle
from store import admin, users

if TYPE_CHECKING:
    from gateway.app import Gateway

SESSION_COOKIE = "smsgw_session"
LOGIN_COOKIE = "smsgw_login"
SESSION_HOURS = 12
LOGIN_FORM_SECONDS = 3600
SECRET_FILE_NAME = "console-secret"
SECRET_ENV = "SMSGW_CONSOLE_SECRET"


class NotLoggedIn(Exception):
    """No valid session: the page redirects to the login form."""


class Forbidden(Exception):
    """The user's role is too low, or the form's CSRF token is wrong."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: str
    lang: str
    csrf: str

    def can(self, role: str) -> bool:
        return admin.ROLE_RANK[self.role] >= admin.ROLE_RANK[role]

    def actor(self, request: Request) -> Actor:
        """The audit identity of this user (key_id None, key_name ``user:<name>``)."""
        return Actor(None, f"user:{self.username}", self.role, request.method,
                     request.url.path)


def load_secret(store_url: str) -> bytes:
    """The signing secret: SMSGW_CONSOLE_SECRET, else a file made once with 32 random bytes."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode("utf-8")
    path: Path = key_file_path(store_url).with_name(SECRET_FILE_NAME)
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        _write_private(path, secrets.token_hex(32) + "\n")
        return bytes.fromhex(path.read_text().strip())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(secret: bytes, token: str | None, max_age: float) -> dict[str, Any] | None:
    """The payload of a token we signed less than ``max_age`` seconds ago, else None."""
    if not token or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    want = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(want, _unb64(mac)):
            return None
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("t"), int | float):
        return None
    if not 0 <= time.time() - payload["t"] <= max_age:
        return None
    return payload


class Sessions:
    """Everything about console identity for one app: secret, throttle, cookies."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._secret: bytes | None = None
        self.throttle = FailureThrottle("console", "source", AuthLimits.from_settings(gw.settings))

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            assert self.gw.store is not None
            self._secret = load_secret(str(self.gw.store.url))
        return self._secret

    # -- login form token ---------------------------------------------------------------------

    def login_token(self) -> tuple[str, str]:
        """(cookie value, form token) for a login form."""
        nonce = secrets.token_urlsafe(16)
        return sign(self.secret, {"n": nonce, "t": int(time.time())}), nonce

    def login_token_ok(self, request: Request, form_token: str) -> bool:
        payload = unsign(self.secret, request.cookies.get(LOGIN_COOKIE), LOGIN_FORM_SECONDS)
        return payload is not None and hmac.compare_digest(str(payload.get("n")), form_token)

    # -- sessions -----------------------------------------------------------------------------

    async def login(self, source: str, username: str, password: str
                    ) -> tuple[dict[str, Any] | None, int | None]:
        """(user row, None) on success; (None, None) wrong; (None, seconds) locked out."""
        import asyncio

        wait = self.throttle.retry_after(source)
        if wait is not None:
            return None, wait
        assert self.gw.store is not None
        row = await self.gw.store.read(lambda c: users.get_by_name(c, username))
        stored = row["password_hash"] if row is not None else users.dummy_hash()
        ok = await asyncio.to_thread(users.verify_password, password, stored)
        if not ok or row is None or row["disabled_at"] is not None:
            self.throttle.failure(source)
            return None, self.throttle.retry_after(source)
        self.throttle.success(source)
        now = datetime.now(UTC)
        await self.gw.store.write(lambda c: users.record_login(c, row["id"], now=now))
        return row, None

    def session_cookie(self, user: dict[str, Any]) -> str:
        return sign(self.secret, {"u": user["id"], "e": user["session_epoch"],
                                  "c": secrets.token_urlsafe(24), "t": int(time.time())})

    async def user(self, request: Request) -> User:
        """The logged-in user of this request, or NotLoggedIn."""
        payload = unsign(self.secret, request.cookies.get(SESSION_COOKIE),
                         SESSION_HOURS * 3600)
        if payload is None or not isinstance(payload.get("u"), int):
            raise NotLoggedIn()
        assert self.gw.store is not None
        row = await self.gw.store.read(lambda c: users.get(c, payload["u"]))
        if (row is None or row["disabled_at"] is not None
                or row["session_epoch"] != payload.get("e")):
            raise NotLoggedIn()
        return User(row["id"], row["username"], row["role"], row["lang"], str(payload["c"]))


def check_csrf(user: User, token: str | None) -> None:
    if not token or not hmac.compare_digest(token, user.csrf):
        raise Forbidden("csrf")


def require(user: User, role: str) -> None:
    if not user.can(role):
        raise Forbidden(role)
