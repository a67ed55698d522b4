"""Upstream applications: submit_sm/s the gateway's SMPP server accepts durably, and receipts.

An application (the project's own asyncio SMPP client, as an ESME) binds as a transceiver to
the gateway's SMPP server (`gateway/smpp_server.py`) and submits N messages with
registered_delivery, keeping `--window` submit_sm outstanding. Each submit_sm_resp comes
only after the message is committed to the store, so

- accepted rate = N / (first submit_sm → last submit_sm_resp): durable acceptance;
- submit latency = submit_sm → submit_sm_resp (p50/p90/p99/max);
- then the messages go out to the SMSC simulator, and the gateway returns a receipt for each
  to the application: receipts matched = receipts whose receipted_message_id is one of ours,
  end-to-end rate = N / (first submit → last receipt).

The check: N accepted with N distinct ids, N receipts matched, none doubled (exit 1 if not).

`--app-process` runs the application in a process of its own, as a real one would be, and
reports its CPU apart; without it the application shares the gateway's process, event loop
and CPU (its submit_sm encoding and response handling count as the gateway's).

    python benchmarks/upstream.py --count 10000 --window 100
    python benchmarks/upstream.py --count 20000 --sim-process --app-process
    python benchmarks/upstream.py --count 20000 --sim-process --database-url postgresql://…
    python benchmarks/upstream.py --short --json /tmp/upstream.json
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import (  # first: puts the repo on sys.path
    SimProcess,
    add_log_flags,
    cpu_seconds,
    db_kind,
    fmt_latency,
    gateway_overrides,
    log_lines,
    percentiles,
    start_logging,
    write_json,
)
from e2e import machine

from commands.pins import hash_password
from gateway import eventloop
from gateway.app import Gateway
from gateway.config import Settings
from gateway.smpp import session as sm
from gateway.smpp import status as st
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import Reply, SmppConnection, connect
from store import upstream

APP, APP_PASSWORD = "bench", "b3nch"  # SMPP passwords are at most 8 octets


class App:
    """The upstream application: counts receipts as they arrive (SMPP Handler)."""

    def __init__(self) -> None:
        self.receipts: Counter[str] = Counter()
        self.distinct = 0  # ids with at least one receipt (the wait loop must not rescan)
        self.last_receipt = 0.0
        self.other = 0

    async def on_request(self, conn: SmppConnection, pdu: Pdu) -> Reply:
        if pdu.command == "deliver_sm" and int(pdu.get("esm_class", 0)) & 0x04:
            key = str(pdu.get("receipted_message_id", ""))
            self.receipts[key] += 1
            self.distinct += self.receipts[key] == 1
            self.last_receipt = time.perf_counter()
        else:
            self.other += 1
        return Reply()

    async def on_bind(self, conn: SmppConnection, event: sm.BindRequested) -> int:
        return st.ESME_RINVBNDSTS

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        pass


async def submit_all(conn: SmppConnection, count: int, window: int
                     ) -> tuple[list[str], list[float], Counter[str]]:
    ids: list[str] = []
    latencies: list[float] = []
    refused: Counter[str] = Counter()
    todo = iter(range(count))

    async def worker() -> None:
        for i in todo:
            params = {"source_addr": "10690", "destination_addr": f"86137{i:08d}",
                      "registered_delivery": 1, "data_coding": 0,
                      "short_message": f"Your verification code is {i:06d}".encode()}
            t = time.perf_counter()
            resp = await conn.request("submit_sm", params)
            latencies.append(time.perf_counter() - t)
            if resp.status == st.ESME_ROK:
                ids.append(str(resp.get("message_id")))
            else:
                refused[st.name(resp.status)] += 1

    # The connection's window holds the outstanding requests; a worker per slot fills it.
    await asyncio.gather(*(worker() for _ in range(window)))
    return ids, latencies, refused


@dataclass
class AppRun:
    """What the application saw (picklable: it may come back from the application's process).
    Times are time.perf_counter(), the system-wide monotonic clock, so they compare across
    processes."""

    ids: list[str]
    latencies: list[float]
    refused: Counter[str]
    receipts: Counter[str]
    start: float
    accepted_at: float
    receipts_at: float
    cpu: float  # the application's own process CPU, when it had one (else 0)


async def app_session(port: int, count: int, window: int, timeout: float, settle: float, *,
                      own_process: bool = False) -> AppRun:
    """Bind, submit ``count`` messages ``window`` at a time, wait for their receipts."""
    app = App()
    cpu0 = cpu_seconds()
    conn = await connect("127.0.0.1", port, app, config=sm.SessionConfig(window=window),
                         name="bench-app")
    try:
        await conn.bind("bind_transceiver", APP, APP_PASSWORD)
        start = time.perf_counter()
        ids, lat, refused = await submit_all(conn, count, window)
        accepted_at = time.perf_counter()
        want = len(set(ids))
        idle_since, seen = time.perf_counter(), -1
        # Counted as they arrive: rescanning every id each turn cost the process a seventh of
        # its CPU. Receipts for unknown ids are caught by the check.
        while app.distinct < want:
            got = sum(app.receipts.values())
            if got != seen:
                seen, idle_since = got, time.perf_counter()
            elif time.perf_counter() - idle_since > timeout:
                break
            await asyncio.sleep(0.05)
        receipts_at = app.last_receipt or time.perf_counter()
        await asyncio.sleep(settle)  # doubles arrive late
    finally:
        await conn.unbind(timeout=2.0)
    return AppRun(ids, lat, refused, app.receipts, start, accepted_at, receipts_at,
                  cpu_seconds() - cpu0 if own_process else 0.0)


def _app_process_main(port: int, count: int, window: int, timeout: float,
                      settle: float) -> AppRun:
    return eventloop.run(app_session(port, count, window, timeout, settle, own_process=True))


async def run(args: argparse.Namespace) -> int:
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/upstream.db"
    sim: SimProcess | None = None
    extra: dict[str, Any] = dict(smpp_server_port=0, window=args.smsc_window,
                                 claim_batch=args.batch, instance="bench-upstream")
    gw: Gateway | None = None
    sim_where, app_where = ("separate" if f else "same" for f in (args.sim_process,
                                                                   args.app_process))
    print(f"upstream: {args.count:,} submit_sm, window {args.window}, over {db_kind(url)}, "
          f"simulator in {sim_where} process, application in {app_where} process", flush=True)
    try:
        if args.sim_process:
            sim = SimProcess()
            extra.update(smsc_host="127.0.0.1", smsc_port=await sim.start())
        gw = Gateway(Settings(**gateway_overrides(url, **extra)))
        await gw.start(api=False)
        assert gw.store is not None and gw.upstream_server is not None
        now = datetime.now(UTC)
        pw_hash = await asyncio.to_thread(hash_password, APP_PASSWORD)
        await gw.store.write(lambda c: upstream.create_account(
            c, system_id=APP, password_hash=pw_hash, now=now))
        await gw.client.wait_bound()
        session = (args.count, args.window, args.timeout, args.settle)
        cpu0 = cpu_seconds()
        if args.app_process:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                result = await asyncio.get_running_loop().run_in_executor(
                    pool, _app_process_main, gw.upstream_server.port, *session)
        else:
            result = await app_session(gw.upstream_server.port, *session)
        gw_cpu = cpu_seconds() - cpu0
        smsc = (await sim.call("stats"))["sim"] if sim else gw.simulator.stats()
    finally:
        if gw is not None:
            await gw.stop()
        if sim is not None:
            await sim.stop()
        tmp.cleanup()
    n = args.count
    ids, lat, refused, receipts = result.ids, result.latencies, result.refused, result.receipts
    start, accepted_at, receipts_at = result.start, result.accepted_at, result.receipts_at
    want = set(ids)
    matched = sum(1 for i in want if receipts[i] > 0)
    doubled = sum(c - 1 for i, c in receipts.items() if i in want and c > 1)
    strangers = sum(c for i, c in receipts.items() if i not in want)
    accepted_rate = len(ids) / (accepted_at - start)
    e2e_rate = matched / (receipts_at - start) if matched else 0.0
    problems = []
    if len(ids) != n or len(want) != n:
        problems.append(f"accepted {len(ids)} ({len(want)} distinct ids) of {n}; "
                        f"refused {dict(refused)}")
    if matched != n:
        problems.append(f"{n - matched} receipts missing")
    if doubled or strangers:
        problems.append(f"{doubled} receipts doubled, {strangers} for unknown ids")
    ok = not problems
    print(f"accepted durably: {len(ids):,}/{n:,} in {accepted_at - start:.2f}s → "
          f"{accepted_rate:,.0f} submit_sm/s")
    print(f"submit_sm → submit_sm_resp: {fmt_latency(percentiles(lat))}")
    print(f"receipts matched: {matched:,}/{n:,} ({doubled} doubled) → {e2e_rate:,.0f} msgs/s "
          f"submit to receipt")
    print(f"CPU per message: gateway{' + simulator' if not sim else ''}"
          f"{' + application' if not args.app_process else ''} {gw_cpu / n * 1000:.2f} ms"
          + (f", application {result.cpu / n * 1000:.2f} ms" if args.app_process else "")
          + f"; SMSC accepted {smsc['submits']['accepted']} submit_sm")
    lines = log_lines(args.log_path)
    print(f"gateway log: {lines:,} lines at {args.log_level} ({lines / max(n, 1):.1f} a message)")
    print(f"check: OK — {n} accepted, {matched} receipts, none doubled" if ok
          else f"check: FAILED — {'; '.join(problems)}")
    write_json(args.json, {
        "benchmark": "upstream", "db": db_kind(url), "count": n, "window": args.window,
        "sim_process": args.sim_process, "app_process": args.app_process,
        "cpu_ms_per_msg_app": result.cpu / n * 1000 if args.app_process else None,
        "accepted": len(ids), "distinct_ids": len(want),
        "accepted_per_s": accepted_rate, "submit_latency": percentiles(lat),
        "receipts_matched": matched, "receipts_doubled": doubled,
        "receipts_unknown": strangers, "end_to_end_per_s": e2e_rate,
        "cpu_ms_per_msg_gateway": gw_cpu / n * 1000,
        "smsc_submits_accepted": smsc["submits"]["accepted"], "ok": ok,
        "log_level": args.log_level, "log_lines": lines, "machine": machine()})
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=10_000, help="submit_sm to send (10000)")
    ap.add_argument("--window", type=int, default=100,
                    help="the application's outstanding submit_sm (default 100)")
    ap.add_argument("--smsc-window", type=int, default=50,
                    help="the gateway's window towards the SMSC (default 50)")
    ap.add_argument("--batch", type=int, default=50, help="claim batch (SMSGW_CLAIM_BATCH)")
    ap.add_argument("--database-url", help="default: a temporary SQLite file")
    ap.add_argument("--sim-process", action="store_true",
                    help="run the SMSC simulator as a separate process")
    ap.add_argument("--app-process", action="store_true",
                    help="run the application (the SMPP client) as a separate process")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="give up waiting for receipts after this many idle seconds")
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--json", metavar="FILE", help="write a one-line JSON summary")
    ap.add_argument("--short", action="store_true", help="a tiny run (200 messages)")
    add_log_flags(ap)
    args = ap.parse_args()
    if args.short:
        args.count, args.settle, args.timeout = 200, 0.5, min(args.timeout, 20.0)
    args.log_path = start_logging(args)
    sys.exit(eventloop.run(run(args)))  # uvloop when installed, as `smsgw up`


if __name__ == "__main__":
    main()
