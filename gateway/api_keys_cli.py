"""`smsgw api-key`: create, list and revoke admin API keys from the command line.

Wiring (gateway/cli.py): ``api_keys_cli.add_parser(sub)`` in build_parser, and
``if args.command == "api-key": return api_keys_cli.main(args)`` in main. For ``smsgw up``:
``api_keys_cli.first_start_key(gateway.store)`` after start creates the first admin key when
none was ever created, and ``first_start_banner`` says how to use it.

The key is printed once, at creation; only its SHA-256 is stored. The first-start key is
also written to a 0600 file in the data directory (``key_file_path``) so a newcomer who
missed the banner can find it; the banner says to delete it once the key is kept elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from store import admin

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from store.store import Store

log = logging.getLogger("smsgw.api_keys")

HINT = "no API keys: create one with `smsgw api-key create --role admin`"
KEY_FILE_NAME = "admin-api-key"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p = sub.add_parser("api-key", help="create, list or revoke admin API keys")
    actions = p.add_subparsers(dest="api_key_command", metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("--role", choices=tuple(admin.ROLE_RANK), default="admin",
                        help="admin (everything), operator (no API keys), viewer (read only); "
                             "default admin")
    create.add_argument("--name", help="a label for the key (default: <role>-<date>)")
    create.add_argument("--database-url", help="store URL (env DATABASE_URL)")
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--database-url", help="store URL (env DATABASE_URL)")
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    revoke.add_argument("--database-url", help="store URL (env DATABASE_URL)")
    return p


def _open(args: argparse.Namespace) -> Store:
    from store.store import Store

    url = (getattr(args, "database_url", None) or os.environ.get("DATABASE_URL")
           or os.environ.get("SMSGW_DATABASE_URL") or None)
    return Store.open(url)


def main(args: argparse.Namespace) -> int:
    command = getattr(args, "api_key_command", None)
    if command not in ("create", "list", "revoke"):
        print("usage: smsgw api-key {create,list,revoke} (see smsgw api-key --help)",
              file=sys.stderr)
        return 2
    store = _open(args)
    try:
        now = datetime.now(UTC)
        if command == "create":
            name = args.name or f"{args.role}-{now:%Y%m%d-%H%M%S}"
            key_id, key = store.run(lambda c: _create(c, name, args.role, now))
            print(f"API key {key_id} ({args.role}, {name!r}) created. It is shown only now:")
            print(f"\n    {key}\n")
            print("Send it as `Authorization: Bearer <key>` (or `X-API-Key: <key>`).")
            return 0
        if command == "list":
            rows = store.run(admin.list_api_keys)
            if not rows:
                print(HINT)
            for r in rows:
                state = f"revoked {r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "active"
                print(f"{r['id']:>4}  {r['role']:<8} {r['prefix']}…  {state:<18} {r['name']}")
            return 0
        done = store.run(lambda c: _revoke(c, args.id, now))
        print(f"API key {args.id} revoked" if done else f"no active API key {args.id}")
        return 0 if done else 1
    finally:
        asyncio.run(store.close())


def _create(conn: object, name: str, role: str, now: datetime) -> tuple[int, str]:
    key_id, key = admin.create_api_key(conn, name=name, role=role, now=now,  # type: ignore[arg-type]
                                       created_by="cli")
    admin.audit(conn, now=now, key_id=None, key_name="cli", method="CLI",  # type: ignore[arg-type]
                path="smsgw api-key create", resource="api_key", resource_id=key_id,
                after=admin.get_api_key(conn, key_id))  # type: ignore[arg-type]
    return key_id, key


def _revoke(conn: object, key_id: int, now: datetime) -> bool:
    before = admin.get_api_key(conn, key_id)  # type: ignore[arg-type]
    if before is None or not admin.revoke_api_key(conn, key_id, now=now):  # type: ignore[arg-type]
        return False
    admin.audit(conn, now=now, key_id=None, key_name="cli", method="CLI",  # type: ignore[arg-type]
                path="smsgw api-key revoke", resource="api_key", resource_id=key_id,
                before=before, after=admin.get_api_key(conn, key_id))  # type: ignore[arg-type]
    return True


def key_file_path(store_url: str) -> Path:
    """Where the first-start key is written: next to the SQLite database file, else in the
    XDG data directory (~/.local/share/smsgw, or $XDG_DATA_HOME/smsgw)."""
    from sqlalchemy.engine import make_url

    url = make_url(store_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).resolve().parent / KEY_FILE_NAME
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "smsgw" / KEY_FILE_NAME


@dataclass(frozen=True, slots=True)
class FirstKey:
    key_id: int
    key: str
    path: Path | None  # where it was saved; None when the file could not be written


async def first_start_key(store: Store) -> FirstKey | None:
    """For `smsgw up`: create the admin key when no key was ever created (None otherwise)."""
    now = datetime.now(UTC)

    def run(conn: Connection) -> tuple[int, str] | None:
        created = admin.create_first_admin_key(conn, now=now)
        if created is not None:
            admin.audit(conn, now=now, key_id=None, key_name="smsgw up", method="CLI",
                        path="smsgw up (first start)", resource="api_key",
                        resource_id=created[0], after=admin.get_api_key(conn, created[0]))
        return created

    created = await store.write(run)
    if created is None:
        return None
    key_id, key = created
    path = key_file_path(str(store.url))
    try:
        _write_private(path, key + "\n")
    except OSError as exc:
        log.warning("first admin API key %d not saved to %s: %s", key_id, path, exc.strerror)
        return FirstKey(key_id, key, None)
    log.info("first admin API key %d (%s…) created; saved to %s", key_id,
             key[:admin.PREFIX_CHARS], path)
    return FirstKey(key_id, key, path)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask, or an older file's mode
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def first_start_banner(first: FirstKey, api_base: str) -> str:
    """The once-only announcement of the first admin key, with how to use it."""
    rule = "=" * 78
    lines = [rule,
             "FIRST START: an admin API key was created. It is shown only this once:",
             "",
             f"    {first.key}",
             "",
             "Every admin API request needs it, e.g.:",
             f"    curl -H 'Authorization: Bearer {first.key}' {api_base}/messages"]
    if first.path is not None:
        lines += [f"Also saved to {first.path} (readable by you only; delete it",
                  "once the key is kept elsewhere). Scripts can read it:",
                  f"    curl -H \"Authorization: Bearer $(cat {first.path})\" {api_base}/stats"]
    lines += ["Lost it? `smsgw api-key create --role admin` makes another.", rule]
    return "\n".join(lines)
