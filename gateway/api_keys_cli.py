"""`smsgw api-key`: create, list and revoke admin API keys from the command line.

Wiring (gateway/cli.py): ``api_keys_cli.add_parser(sub)`` in build_parser, and
``if args.command == "api-key": return api_keys_cli.main(args)`` in main. For ``smsgw up``:
``api_keys_cli.first_start_hint(gateway.store)`` after start returns a line to print (or
None when a key exists).

The key is printed once, at creation; only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from store import admin

if TYPE_CHECKING:
    from store.store import Store

HINT = ("no admin API key exists yet: create one with `smsgw api-key create --role admin` "
        "(until then the API serves loopback requests without a key)")


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
                print("no API keys; " + HINT.split(": ", 1)[1])
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


async def first_start_hint(store: Store) -> str | None:
    """For `smsgw up`: the line to print when no API key exists yet, else None."""
    return None if await store.read(admin.any_api_key) else HINT
