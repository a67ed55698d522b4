"""`smsgw simulator` / `python -m simulator`: run the SMSC simulator in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from common import logs
from common.phones import default_country
from gateway import eventloop
from simulator.config import (
    DEFAULT_CONTROL_PORT,
    DEFAULT_PORT,
    ENV_VARS,
    ConfigError,
    SimulatorConfig,
    parse_account,
    parse_outcomes,
)

DESCRIPTION = """\
Run the bundled SMSC simulator: an SMPP 3.4 server that stands in for an operator's SMSC
and for the handsets behind it.

  * ESMEs (the gateway, or your own client) bind with an account (default smsgw/secret).
  * Every submit_sm is answered with a unique message_id and lands in the inbox of a
    virtual handset (long texts joined); a delivery receipt follows when asked for.
  * Handsets "text" the gateway through the HTTP control API (or the Python API):
    the simulator sends deliver_sm to a bound receiver, and retries until acknowledged.
  * Faults on demand, for testing an ESME's recovery: withhold or delay responses, answer
    error statuses, drop or unbind mid-window, refuse binds, send malformed PDUs (below).
"""

EPILOG = f"""\
control API (default http://127.0.0.1:{DEFAULT_CONTROL_PORT}):
  POST   /mo                       {{"from": "8613800000001", "to": "10690", "text": "BAL"}}
  GET    /handsets/MSISDN/inbox    messages the handset received (?since=ID)
  DELETE /handsets/MSISDN/inbox    empty an inbox
  GET    /stats                    binds, submits, receipts, MOs
  POST   /faults                   arm a fault, e.g. {{"kind": "delay", "seconds": 30}}
  GET    /faults                   armed faults and how often each kind fired
  DELETE /faults                   disarm all (DELETE /faults/ID: one)
  POST   /faults/drop              drop every SMPP connection abruptly, now
  PUT    /throttle                 {{"tps": 5}} (0 = off)
  GET    /healthz                  liveness; interactive docs at /docs

faults (POST /faults; every submit fault takes "count" (null = until removed), "to"
(destination prefix) and "system_id"):
  {{"kind": "withhold"}}                          never answer the next submit_sm (message
                                                still accepted; "accept": false = not)
  {{"kind": "delay", "seconds": 30}}              answer 30 s late
  {{"kind": "status", "status": "ESME_RTHROTTLED", "count": 20}}   a burst of refusals
  {{"kind": "drop"}}  {{"kind": "unbind"}}          close / unbind at the next submit_sm
  {{"kind": "malformed", "variant": "short_length"}}   also long_length, unknown_command,
                                                truncated_body; then answers as usual
  {{"kind": "stop_reading", "seconds": 20}}       TCP back-pressure after the next submit
  {{"kind": "no_receipt"}}                        deliver, but never send the receipt;
                                                "forget": true = query_sm does not know it
  {{"kind": "refuse_binds", "seconds": 60, "status": "ESME_RBINDFAIL"}}
  {{"kind": "deliver_before_bind", "from": "8613800000001", "text": "HELP"}}

reserved destination numbers (text one from a handset, or `smsgw send` to it); digits are
<prefix><code><arg>, prefix 86999 (--fault-prefix; with default country 86 the national
form 999... is the same number), arg three digits, any digits after are free:
  8699901          withhold the submit_sm_resp (message accepted and delivered)
  8699902SSS       answer SSS seconds late (default 30), e.g. 8699902030
  8699903NNN       answer status NNN (decimal): 8699903008 ESME_RSYSERR, 8699903020
                   ESME_RMSGQFUL, 8699903088 ESME_RTHROTTLED, 8699903011 ESME_RINVDSTADR
  8699904          drop the connection instead of answering
  8699905          answer, then unbind
  8699906V         malformed PDU first: V=1 short length, 2 long, 3 unknown command,
                   4 truncated body
  8699907SSS       answer, then stop reading for SSS seconds (default 10)
  8699908          no delivery receipt (query_sm still knows the message)
  8699909          no delivery receipt, and query_sm does not know the message

environment (flags win over environment, environment over --config):
  {ENV_VARS['port']}, {ENV_VARS['control_port']}, {ENV_VARS['host']},
  {ENV_VARS['receipt_delay']}, {ENV_VARS['seed']}
  SMSGW_DEFAULT_COUNTRY (default 86): the country of national numbers, shared with the
    gateway: a handset written +86 138-0000-0001, 13800000001 or 8613800000001 is one
    handset

config file (YAML or JSON), every key optional:
  port: 2775
  control_port: 2776
  accounts: {{smsgw: secret, other: pw}}
  receipt_delay: 0.2
  receipt_outcomes: {{DELIVRD: 0.8, UNDELIV: 0.15, EXPIRED: 0.05}}
  receipt_tlvs: true
  message_id_format: hex          # or decimal
  throttle_tps: 0
  seed: 42
  mo_retry_interval: 2.0
  fault_prefix: "86999"           # reserved fault numbers; "" = off
  inbox_limit: 100000             # inbox messages kept; null = keep everything

examples:
  smsgw simulator
  smsgw simulator --port 2775 --account smsgw:secret --outcomes DELIVRD=0.9,UNDELIV=0.1 --seed 7
  curl -X POST localhost:{DEFAULT_CONTROL_PORT}/mo -H 'content-type: application/json' \\
       -d '{{"from": "8613800000001", "text": "订货123456 1001*5"}}'
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="smsgw simulator", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE",
                   help="YAML or JSON file with any of the settings below")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="N",
                   help=f"SMPP port (default {DEFAULT_PORT}; 0 = any free port)")
    p.add_argument("--control-port", type=int, metavar="N",
                   help=f"HTTP control API port (default {DEFAULT_CONTROL_PORT}; "
                        "0 = any free port)")
    p.add_argument("--no-control", action="store_true", help="do not start the control API")
    p.add_argument("--account", action="append", metavar="SYSTEM_ID:PASSWORD", default=[],
                   help="an ESME account allowed to bind; repeat for more "
                        "(replaces the default smsgw:secret)")
    p.add_argument("--receipt-delay", type=float, metavar="SECONDS",
                   help="delay between submit_sm and its delivery receipt (default 0.2)")
    p.add_argument("--outcomes", metavar="STAT=WEIGHT,...",
                   help="receipt outcome mix, e.g. DELIVRD=0.9,UNDELIV=0.1 "
                        "(default DELIVRD=1); only DELIVRD messages reach the handset")
    p.add_argument("--no-receipt-tlvs", action="store_true",
                   help="omit receipted_message_id / message_state TLVs from receipts")
    p.add_argument("--message-id-format", choices=("hex", "decimal"),
                   help="form of the message_id in submit_sm_resp (default hex)")
    p.add_argument("--seed", type=int, help="seed for the outcome choices (repeatable runs)")
    p.add_argument("--throttle", type=float, metavar="TPS",
                   help="answer ESME_RTHROTTLED above this many submit_sm/s (0 = off)")
    p.add_argument("--mo-retry-interval", type=float, metavar="SECONDS",
                   help="wait before resending a refused or unanswered deliver_sm (default 2)")
    p.add_argument("--fault-prefix", metavar="DIGITS",
                   help="destinations starting with these digits cause faults (see the "
                        "number plan below; default 86999, '' = off)")
    p.add_argument("--no-uvloop", action="store_true",
                   help="asyncio's own event loop even when uvloop is installed "
                        "(env SMSGW_UVLOOP=0)")
    p.add_argument("--max-connections", type=int, metavar="N",
                   help="SMPP connections open at once; more are closed at once (default 1000)")
    p.add_argument("--max-connections-per-source", type=int, metavar="N",
                   help="SMPP connections open at once from one address (default 200)")
    p.add_argument("--bind-timeout", type=float, metavar="SECONDS",
                   help="close a connection that has not bound within this (default 30)")
    p.add_argument("--pdu-read-timeout", type=float, metavar="SECONDS",
                   help="close a session whose PDU does not arrive in full within this "
                        "(slow-loris guard; default 30)")
    p.add_argument("--max-unanswered", type=int, metavar="N",
                   help="requests per session awaiting our answer; more get ESME_RTHROTTLED "
                        "(default 1000)")
    p.add_argument("--inbox-limit", type=int, metavar="N",
                   help="inbox messages kept across all handsets; past it the oldest are "
                        "forgotten, so a long load test keeps memory flat (default 100000; "
                        "0 = keep everything)")
    p.add_argument("--tls-cert", metavar="PEM",
                   help="serve SMPP over TLS with this certificate (chain)")
    p.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert, if separate")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), type=str.upper,
                   help="log verbosity (default INFO: one line per bind, submit, receipt, MO)")
    return p


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Merge --config, the environment and the flags into one validated config."""
    overrides: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "control_port": args.control_port,
        "receipt_delay": args.receipt_delay,
        "message_id_format": args.message_id_format,
        "seed": args.seed,
        "throttle_tps": args.throttle,
        "mo_retry_interval": args.mo_retry_interval,
        "fault_prefix": args.fault_prefix,
        "max_connections": args.max_connections,
        "max_connections_per_source": args.max_connections_per_source,
        "bind_timeout": args.bind_timeout,
        "pdu_read_timeout": args.pdu_read_timeout,
        "max_unanswered": args.max_unanswered,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
    }
    if args.account:
        overrides["accounts"] = dict(parse_account(a) for a in args.account)
    if args.outcomes:
        overrides["receipt_outcomes"] = parse_outcomes(args.outcomes)
    if args.no_receipt_tlvs:
        overrides["receipt_tlvs"] = False
    if args.inbox_limit is not None and args.inbox_limit < 0:
        raise ConfigError("--inbox-limit: must be 0 (keep everything) or more")
    config = SimulatorConfig.load(args.config, overrides=overrides)
    if args.inbox_limit is not None:
        config = config.model_copy(update={"inbox_limit": args.inbox_limit or None})
    if args.no_control:
        config = config.model_copy(update={"control_port": None})
    return config


async def run(config: SimulatorConfig, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM), then unbind every session and exit."""
    from simulator.smsc import Simulator

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    sim = Simulator(config)
    try:
        await sim.start()
        await stop.wait()
        logging.getLogger("smsgw.simulator").info("shutting down: unbinding sessions")
    finally:
        await sim.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level, fmt="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = config_from_args(args)
        default_country()  # a bad SMSGW_DEFAULT_COUNTRY stops here, not at the first MO
    except (ConfigError, ValueError) as exc:
        print(f"smsgw simulator: {exc}", file=sys.stderr)
        return 2
    try:
        eventloop.run(run(config), use_uvloop=False if args.no_uvloop else None)
    except OSError as exc:
        print(f"smsgw simulator: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
