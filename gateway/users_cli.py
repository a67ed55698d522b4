"""`smsgw user`: console users (people) from the command line: add, list, disable, passwd.

Wiring (gateway/cli.py): ``users_cli.add_parser(sub)`` and ``users_cli.main(args)``; for
``smsgw up``, ``first_start_user(store)`` creates the ``admin`` user with a generated
password when no user exists, printed once (``first_start_banner``) and saved 0600 next to
the first admin API key (gateway/api_keys_cli.py).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.api_keys_cli import _open, _write_private, key_file_path
from store import admin, users

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from store.store import Store

log = logging.getLogger("smsgw.users")

PASSWORD_FILE_NAME = "console-admin-password"
ACTIONS = ("add", "list", "disable", "enable", "passwd")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p = sub.add_parser("user", help="console users (people who log in to the web console)")
    actions = p.add_subparsers(dest="user_command", metavar="ACTION")
    add = actions.add_parser("add", help="create a user; prints a generated password "
                             "unless --password-stdin")
    add.add_argument("username")
    add.add_argument("--role", choices=tuple(admin.ROLE_RANK), default="operator",
                     help="admin (also users and API keys), operator (changes), viewer "
                          "(read only); default operator")
    add.add_argument("--lang", choices=("zh", "en"), default="zh",
                     help="console language (default zh)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input instead of generating one")
    actions.add_parser("list", help="list users")
    dis = actions.add_parser("disable", help="disable a user (ends its sessions)")
    dis.add_argument("username")
    en = actions.add_parser("enable", help="enable a disabled user again")
    en.add_argument("username")
    pw = actions.add_parser("passwd", help="set a new password (ends the user's sessions)")
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true",
                    help="read the password from standard input (default: prompt, or "
                         "generate one when not on a terminal)")
    for a in (add, actions.choices["list"], dis, en, pw):
        a.add_argument("--database-url", help="store URL (env DATABASE_URL)")
    return p


def _read_password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated?) from stdin, a prompt, or generated."""
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n"), False
    if args.user_command == "passwd" and sys.stdin.isatty():
        first = getpass.getpass("new password: ")
        if first != getpass.getpass("again: "):
            raise users.UserError("the two passwords differ")
        return first, False
    return users.generate_password(), True


def _audit(conn: Connection, action: str, user_id: int, before: object, now: datetime) -> None:
    admin.audit(conn, now=now, key_id=None, key_name="cli", method="CLI",
                path=f"smsgw user {action}", resource="console_user", resource_id=user_id,
                before=before, after=users.get(conn, user_id))


def main(args: argparse.Namespace) -> int:
    command = getattr(args, "user_command", None)
    if command not in ACTIONS:
        print("usage: smsgw user {add,list,disable,enable,passwd} (see smsgw user --help)",
              file=sys.stderr)
        return 2
    store = _open(args)
    try:
        return _run(store, args, command)
    except users.UserError as exc:
        print(f"smsgw user {command}: {exc}", file=sys.stderr)
        return 1
    finally:
        asyncio.run(store.close())


def _find(conn: Connection, username: str) -> dict[str, Any]:
    found = users.get_by_name(conn, username)
    if found is None:
        raise users.UserError(f"no user {username!r} (see smsgw user list)")
    return found


def _run(store: Store, args: argparse.Namespace, command: str) -> int:
    now = datetime.now(UTC)
    if command == "list":
        rows = store.run(users.list_users)
        if not rows:
            print("no console users: create one with `smsgw user add NAME --role admin`")
        for r in rows:
            state = f"disabled {r['disabled_at']:%Y-%m-%d}" if r["disabled_at"] else "active"
            last = f"{r['last_login_at']:%Y-%m-%d %H:%M}" if r["last_login_at"] else "never"
            print(f"{r['id']:>4}  {r['username']:<20} {r['role']:<8} {r['lang']}  "
                  f"{state:<19} last login {last}")
        return 0
    if command in ("disable", "enable"):
        def toggle(c: Connection) -> None:
            found = _find(c, args.username)
            before = users.get(c, found["id"])
            users.set_disabled(c, found["id"], now=now if command == "disable" else None)
            _audit(c, command, found["id"], before, now)
        store.run(toggle)
        print(f"user {args.username} {command}d")
        return 0
    password, generated = _read_password(args)
    users.check_password_rules(password)
    hashed = users.hash_password(password)
    if command == "add":
        def add(c: Connection) -> int:
            uid = users.create_user(c, username=args.username, password_hash=hashed,
                                    role=args.role, lang=args.lang, now=now, created_by="cli")
            _audit(c, "add", uid, None, now)
            return uid
        uid = store.run(add)
        print(f"user {uid} {args.username!r} ({args.role}) created.")
    else:
        def passwd(c: Connection) -> None:
            found = _find(c, args.username)
            uid = int(found["id"])
            before = users.get(c, uid)
            users.set_password_hash(c, uid, hashed, now=now)
            _audit(c, "passwd", uid, before, now)
        store.run(passwd)
        print(f"password of {args.username} changed; its sessions are ended.")
    if generated:
        print(f"Its password (shown only now):\n\n    {password}\n")
    return 0


@dataclass(frozen=True, slots=True)
class FirstUser:
    username: str
    password: str
    path: Path | None


async def first_start_user(store: Store) -> FirstUser | None:
    """For `smsgw up`: the ``admin`` console user when no user exists yet (None otherwise)."""
    password = users.generate_password()
    hashed = await asyncio.to_thread(users.hash_password, password)
    now = datetime.now(UTC)

    def run(conn: Connection) -> int | None:
        uid = users.create_first_admin(conn, password_hash=hashed, now=now)
        if uid is not None:
            admin.audit(conn, now=now, key_id=None, key_name="smsgw up", method="CLI",
                        path="smsgw up (first start)", resource="console_user",
                        resource_id=uid, after=users.get(conn, uid))
        return uid

    if await store.write(run) is None:
        return None
    path = key_file_path(str(store.url)).with_name(PASSWORD_FILE_NAME)
    try:
        _write_private(path, password + "\n")
    except OSError as exc:
        log.warning("first console password not saved to %s: %s", path, exc.strerror)
        return FirstUser(users.FIRST_USER, password, None)
    return FirstUser(users.FIRST_USER, password, path)


def first_start_banner(first: FirstUser, console_url: str) -> str:
    lines = ["FIRST START: the console user 'admin' was created. Log in at",
             f"    {console_url}",
             f"    username: {first.username}",
             f"    password: {first.password}   (shown only this once)"]
    if first.path is not None:
        lines.append(f"Also saved to {first.path} (readable by you only; delete it once kept).")
    lines.append("Change it in the console (click your name, top right) or with "
                 "`smsgw user passwd admin`; add people: `smsgw user add NAME --role operator`.")
    return "\n".join(lines)
