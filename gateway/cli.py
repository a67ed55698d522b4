"""`smsgw` — the command line: run the gateway, the simulator, send a message, migrate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from common import logs
from gateway import api_keys_cli, eventloop, users_cli
from gateway.config import Settings
from gateway.phone import add_phone_parser, phone_main

DESCRIPTION = """\
smsgw: an SMS gateway for retail ordering, data collection and subscriber notices.

Start here:   smsgw up            gateway + bundled SMSC simulator + admin API, on SQLite
Then text it: curl -X POST localhost:2776/mo -H 'content-type: application/json' \\
                -d '{"from": "8613800000001", "to": "10690", "text": "HELP"}'
Read reply:   curl localhost:2776/handsets/8613800000001/inbox
"""

UP_EPILOG = """\
Every option can also be set in the environment: SMSGW_<NAME> (e.g. SMSGW_SMSC_HOST,
SMSGW_API_PORT), and DATABASE_URL for the store. Without --smsc-host the bundled simulator
runs in-process (SMPP on 2775, control API on 2776). Stop with Ctrl-C or SIGTERM: the
gateway drains (/readyz answers 503, no new claims, submit_sm on the wire get up to
SMSGW_DRAIN_TIMEOUT seconds, default 10, for their responses, the rest goes back to the
queue), unbinds and exits; nothing queued is lost and nothing is left 'sending'.
"""


INSECURE_DEV_WARNING = (
    "INSECURE DEV MODE (--insecure-dev / SMSGW_INSECURE_DEV): the admin API on %s:%s serves "
    "every request WITHOUT a key, as admin. Local development only; never expose it.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsgw", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", default=os.environ.get("SMSGW_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser("up", help="run the gateway (with the bundled simulator unless "
                        "--smsc-host is given)", epilog=UP_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("--database-url", help="SQLAlchemy URL; default: SQLite file under "
                    "~/.local/share/smsgw (env DATABASE_URL)")
    up.add_argument("--smsc-host", help="SMSC to bind to; omit to run the bundled simulator")
    up.add_argument("--smsc-port", type=int, help="SMSC SMPP port (default 2775)")
    up.add_argument("--system-id", dest="smsc_system_id", help="bind system_id (default smsgw)")
    up.add_argument("--password", dest="smsc_password", help="bind password (default secret)")
    up.add_argument("--source-addr", help="our short code, the sender of every MT "
                    "(default 10690)")
    up.add_argument("--api-port", type=int, help="admin HTTP API port (default 8080)")
    up.add_argument("--sim-port", type=int, help="bundled simulator SMPP port (default 2775)")
    up.add_argument("--sim-control-port", type=int,
                    help="bundled simulator control API port (default 2776)")
    up.add_argument("--window", type=int, help="max outstanding SMPP requests (default 10)")
    up.add_argument("--no-uvloop", action="store_true",
                    help="run on asyncio's own event loop even when uvloop is installed "
                         "(env SMSGW_UVLOOP=0)")
    up.add_argument("--insecure-dev", action="store_true", default=None,
                    help="LOCAL DEVELOPMENT ONLY: serve admin API requests without a key, as "
                         "admin (env SMSGW_INSECURE_DEV=1); off by default")

    simp = sub.add_parser("simulator", help="run the SMSC simulator alone "
                          "(see smsgw simulator --help)", add_help=False)
    simp.add_argument("args", nargs=argparse.REMAINDER)

    send = sub.add_parser("send", help="queue one SMS (sent by a running gateway)")
    send.add_argument("msisdn", help="destination phone, e.g. 8613800000001, +86 138 0000 0001 "
                      "or 13800000001 (national numbers in SMSGW_DEFAULT_COUNTRY)")
    send.add_argument("text", help="message text (GSM or Unicode; long texts are split, at "
                      "most SMSGW_MAX_MT_PARTS parts, default 10)")
    send.add_argument("--priority", type=int, default=2, choices=range(4),
                      help="0 alert, 1 reply, 2 transactional (default), 3 bulk")
    send.add_argument("--database-url", help="store URL (env DATABASE_URL)")

    add_phone_parser(sub)
    api_keys_cli.add_parser(sub)
    users_cli.add_parser(sub)

    demo = sub.add_parser("demo-data", help="load demo products, retailers, subscribers, "
                          "a manager and topics (idempotent)")
    demo.add_argument("--database-url", help="store URL (env DATABASE_URL)")

    up_apps = sub.add_parser("upstream", help="applications that bind to our SMPP server")
    up_sub = up_apps.add_subparsers(dest="upstream_command", metavar="ACTION")
    add = up_sub.add_parser("add", help="allow an application to bind (system_id/password)")
    add.add_argument("system_id", help="the system_id it binds with (up to 15 characters)")
    add.add_argument("--password", required=True, help="its bind password (up to 8 chars)")
    add.add_argument("--allowed-sources", default="",
                     help="comma-separated source address prefixes it may use (default any)")
    add.add_argument("--tps", type=float, default=0.0,
                     help="max submit_sm per second (default 0 = no limit)")
    add.add_argument("--database-url", help="store URL (env DATABASE_URL)")

    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(dest="db_command", metavar="ACTION")
    upg = dbsub.add_parser("upgrade", help="apply migrations up to the latest schema")
    upg.add_argument("--database-url", help="store URL (env DATABASE_URL)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in vars(args).items()
                 if v is not None and k in Settings.model_fields}
    try:
        return Settings(**overrides)
    except Exception as exc:  # pydantic's message names the field and the rule
        raise SystemExit(f"smsgw: bad configuration: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulator"]:
        # Hand the whole rest over, --help included: the simulator owns its flags.
        from simulator.cli import main as simulator_main

        return simulator_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    if args.command == "up":
        return eventloop.run(_up(_settings(args)), use_uvloop=False if args.no_uvloop else None)
    if args.command == "send":
        return _send(args)
    if args.command == "api-key":
        return api_keys_cli.main(args)
    if args.command == "user":
        return users_cli.main(args)
    if args.command == "phone":
        return phone_main(args)
    if args.command == "upstream" and args.upstream_command == "add":
        return _upstream_add(args)
    if args.command == "demo-data":
        return _demo_data(args)
    if args.command == "db" and args.db_command == "upgrade":
        return _db_upgrade(args)
    parser.print_help()
    return 2


async def _up(settings: Settings) -> int:
    from gateway.app import Gateway

    gw = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    logging.getLogger("smsgw").info("event loop: %s", type(loop).__module__.split(".")[0])
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await gw.start()
    except Exception as exc:
        logging.getLogger("smsgw").error("cannot start: %s", exc)
        await gw.stop()
        return 1
    _print_banner(gw)
    if gw.settings.insecure_dev:
        logging.getLogger("smsgw").warning(INSECURE_DEV_WARNING,
                                           gw.settings.api_host, gw.api_port)
    elif gw.store is not None:
        first = await api_keys_cli.first_start_key(gw.store)
        if first is not None:
            base = f"http://{gw.settings.api_host}:{gw.api_port}"
            print(api_keys_cli.first_start_banner(first, base), flush=True)
    if gw.store is not None:
        user = await users_cli.first_start_user(gw.store)
        if user is not None:
            url = f"http://{gw.settings.api_host}:{gw.api_port}/"
            print(users_cli.first_start_banner(user, url), flush=True)
    await stop.wait()
    logging.getLogger("smsgw").info(
        "shutting down: draining (up to %gs for submit_sm responses), then unbinding…",
        gw.settings.drain_timeout)
    await gw.stop()
    return 0


def _print_banner(gw: object) -> None:
    from gateway.app import Gateway

    assert isinstance(gw, Gateway)
    base = f"http://{gw.settings.api_host}:{gw.api_port}"
    lines = [f"smsgw is up. Console: {base}/   Admin API: {base}/docs"]
    if gw.simulator is not None:
        ctl = gw.simulator.control_port
        lines += [
            f"Simulator control API: http://127.0.0.1:{ctl}",
            "Text the gateway from a virtual handset:",
            f"  curl -s -X POST localhost:{ctl}/mo -H 'content-type: application/json' "
            f"-d '{{\"from\": \"8613800000001\", \"to\": \"{gw.settings.source_addr}\", "
            f"\"text\": \"HELP\"}}'",
            f"  curl -s localhost:{ctl}/handsets/8613800000001/inbox",
        ]
    print("\n".join(lines), flush=True)


def _send(args: argparse.Namespace) -> int:
    """Queue one MT, checked exactly as `POST /messages` checks it (the same validators)."""
    from common.phones import canonical
    from gateway.mt_text import mt_text
    from store import outbound
    from store.store import Store

    try:
        to, text = canonical(args.msisdn), mt_text(args.text)
    except ValueError as exc:  # InvalidPhoneNumber, FieldError: the message says what to do
        print(f"smsgw send: refused, nothing queued: {exc}", file=sys.stderr)
        return 2
    settings = _settings(args)
    store = Store.open(settings.database_url)
    try:
        mt_id = store.run(lambda c: outbound.enqueue_mt(
            c, dest_addr=to, text=text, priority=args.priority,
            now=datetime.now(UTC), source_addr=settings.source_addr))
    finally:
        asyncio.run(store.close())
    print(f"queued message {mt_id} to {to} (a running gateway sends it)")
    return 0


def _upstream_add(args: argparse.Namespace) -> int:
    from commands.pins import hash_password
    from store import upstream
    from store.store import Store

    if not 1 <= len(args.system_id) <= 15 or not 1 <= len(args.password) <= 8:
        raise SystemExit("smsgw: system_id must be 1-15 characters and the password 1-8 "
                         "(SMPP 3.4 §5.2.1, §5.2.2)")
    settings = _settings(args)
    store = Store.open(settings.database_url)
    try:
        if store.run(lambda c: upstream.account(c, args.system_id)) is not None:
            raise SystemExit(f"smsgw: an application {args.system_id!r} exists already")
        store.run(lambda c: upstream.create_account(
            c, system_id=args.system_id, password_hash=hash_password(args.password),
            allowed_sources=args.allowed_sources, tps=args.tps, now=datetime.now(UTC)))
    finally:
        asyncio.run(store.close())
    print(f"application {args.system_id} may now bind to the SMPP server "
          f"(port {settings.smpp_server_port}, SMSGW_SMPP_SERVER_PORT)")
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from pathlib import Path

    from commands import pins
    from commands.demo import load_demo_data
    from store.store import Store

    settings = _settings(args)
    store = Store.open(settings.database_url)
    try:
        key_file = Path(settings.pin_key_file or pins.default_key_file(store.url))
        pins.install(store.run(lambda c: pins.open_key_file(c, key_file)))
        summary = store.run(lambda c: load_demo_data(c, now=datetime.now(UTC)))
    finally:
        asyncio.run(store.close())
    print(format_demo_summary(summary))
    return 0


def format_demo_summary(summary: dict[str, Any]) -> str:
    created = ", ".join(f"{n} {k}" for k, n in summary.get("created", {}).items())
    lines = [f"demo data loaded (created: {created or 'nothing, all present'})", "products:"]
    lines += [f"  {p}" for p in summary.get("products", [])]
    lines.append("accounts (PINs are demo values):")
    lines += [f"  {a['account_no']} {a['role']:<10} {a['phone']:<16} PIN {a['pin']}  {a['name']}"
              for a in summary.get("accounts", [])]
    lines.append("topics:")
    lines += [f"  {t}" for t in summary.get("topics", [])]
    if summary.get("engagements"):
        lines.append("poll and survey (results: GET /polls/{id}/results, /surveys/{id}/results):")
        lines += [f"  {e}" for e in summary["engagements"]]
    lines += [
        "Try it with `smsgw up` running:",
        "  smsgw phone 8613800000001    then type  ORD 123456 1001*5 1002*2   or  余额",
        "                               or  SAT  then  1   (poll);  STOCK  then 3 answers",
    ]
    return "\n".join(lines)


def _db_upgrade(args: argparse.Namespace) -> int:
    from store.db import default_database_url
    from store.migrate import current_revision, upgrade

    url = args.database_url or Settings().database_url or default_database_url()
    upgrade(url)
    print(f"schema at revision {current_revision(url)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
