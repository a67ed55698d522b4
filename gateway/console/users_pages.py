"""The Users page (admins only): list, add with a generated password shown once, disable or
enable, reset a password. The same store functions as `smsgw user` (store/users.py), and
every change is in the audit log under the admin who made it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Connection

from gateway.console.auth import User, check_csrf, require
from gateway.console.i18n import LANGS, translator
from gateway.console.pages import Me, Token, gw_of, render
from store import admin, users

router = APIRouter(prefix="/ui", include_in_schema=False)


async def _page(request: Request, me: User, status: int = 200, **ctx: Any) -> HTMLResponse:
    rows = await gw_of(request).store.read(users.list_users)
    return render(request, "users.html", me, status, page="users", rows=rows,
                  roles=tuple(admin.ROLE_RANK), langs=LANGS, **ctx)


@router.get("/users", response_class=HTMLResponse)
async def users_page(request: Request, me: Me) -> HTMLResponse:
    require(me, "admin")
    return await _page(request, me)


@router.post("/users", response_class=HTMLResponse, response_model=None)
async def add_user(request: Request, me: Me, token: Token,
                   username: Annotated[str, Form(max_length=64)],
                   role: Annotated[str, Form(max_length=16)],
                   lang: Annotated[str, Form(max_length=4)] = "zh") -> Response:
    check_csrf(me, token)
    require(me, "admin")
    password = users.generate_password()
    hashed = await asyncio.to_thread(users.hash_password, password)
    actor = me.actor(request)

    def run(c: Connection) -> int:
        uid = users.create_user(c, username=username.strip(), password_hash=hashed, role=role,
                                lang=lang, now=datetime.now(UTC), created_by=f"user:{me.username}")
        actor.record(c, "console_user", uid, after=users.get(c, uid))
        return uid

    try:
        await gw_of(request).store.write(run)
    except users.UserError as exc:
        return await _page(request, me, 422, error=str(exc))
    return await _page(request, me, 201, shown=(username.strip(), password))


async def _change(request: Request, me: User, user_id: int, *, disable: bool | None = None,
                  password_hash: str | None = None) -> bool:
    actor, now = me.actor(request), datetime.now(UTC)

    def run(c: Connection) -> bool:
        before = users.get(c, user_id)
        if before is None:
            return False
        if disable is not None:
            users.set_disabled(c, user_id, now=now if disable else None)
        if password_hash is not None:
            users.set_password_hash(c, user_id, password_hash, now=now)
        actor.record(c, "console_user", user_id, before=before, after=users.get(c, user_id))
        return True

    return await gw_of(request).store.write(run)


@router.post("/users/{user_id}/disable", response_class=HTMLResponse, response_model=None)
async def disable_user(request: Request, me: Me, token: Token, user_id: int,
                       enable: Annotated[str, Form(max_length=4)] = "") -> Response:
    check_csrf(me, token)
    require(me, "admin")
    t = translator(me.lang)
    if user_id == me.id and not enable:  # the last way back in may be this very session
        return await _page(request, me, 409, error=t("cannot_disable_self"))
    if not await _change(request, me, user_id, disable=not enable):
        return await _page(request, me, 404, error=t("no_such_user"))
    return await _page(request, me, flash=t("user_enabled" if enable else "user_disabled"))


@router.post("/users/{user_id}/password", response_class=HTMLResponse, response_model=None)
async def reset_password(request: Request, me: Me, token: Token, user_id: int) -> Response:
    """A new generated password, shown this once; the user's sessions end."""
    check_csrf(me, token)
    require(me, "admin")
    password = users.generate_password()
    hashed = await asyncio.to_thread(users.hash_password, password)
    if not await _change(request, me, user_id, password_hash=hashed):
        return await _page(request, me, 404, error=translator(me.lang)("no_such_user"))
    row = await gw_of(request).store.read(lambda c: users.get(c, user_id))
    return await _page(request, me, shown=(row["username"] if row else "?", password))
