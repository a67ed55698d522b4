"""End-to-end throughput: MOs from virtual handsets → gateway → store → replies → handsets.

Starts the real gateway (as `smsgw up` does) against the bundled SMSC simulator, fires N MOs
and waits for every reply to land in its handset's inbox: MO → commit → deliver_sm_resp →
command → reply queued → submit_sm → submit_sm_resp → receipt.

- Traffic: by default "HELP" from N distinct handsets (the historical figure); `--mix` is
  the realistic mix of `benchmarks/mix.py` (orders of 1-20 lines with a PIN — their share is
  `--pin-share` —, sales reports, balance queries, HELP, garbage, long concatenated texts)
  from `--accounts` registered retailers and from unregistered handsets.
- Pacing: `--rate R` is open loop (MOs are due every 1/R s whatever the gateway does, and
  latency counts from when an MO was due); without it every MO is injected at once (flood).
- `--sim-process` runs the simulator and the handsets in their own process, so the CPU
  figures split into the gateway's and the simulator's; otherwise they share one process.
- `--count-statements`: SQL statements the gateway sent to the database per MO, by kind and
  table (an engine event listener added by the benchmark; costs a little CPU).
- The check: every MO got exactly one reply of the expected kind (OK, or E01 for garbage),
  none doubled, and the orders and sales reports in the database are those sent. A failed
  check prints `check: FAILED …` and exits 1.

    python benchmarks/e2e.py --count 3000
    python benchmarks/e2e.py --mix --rate 500 --count 5000 --sim-process
    python benchmarks/e2e.py --mix --database-url postgresql://postgres@127.0.0.1/test
    python benchmarks/e2e.py --short --json /tmp/e2e.json
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import (  # noqa: I001  (sets sys.path for the repo)
    REPO,
    add_log_flags,
    log_lines,
    start_logging,
    SimProcess,
    MachineCpu,
    cpu_budget_line,
    cpu_ceiling,
    cpu_seconds,
    db_kind,
    fmt_latency,
    gateway_overrides,
    write_json,
)
import mix
from simdriver import SimDriver

from gateway import eventloop
from gateway.app import Gateway
from gateway.config import Settings


class StatementCounter:
    """Counts the statements the gateway's engine executes, by verb and table."""

    def __init__(self) -> None:
        self.by_kind: Counter[str] = Counter()
        self.rows = 0

    def attach(self, engine: Any) -> None:
        import sqlalchemy as sa

        from store import fastsql

        sa.event.listen(engine, "before_cursor_execute", self._seen)
        # The hot statements run on the DBAPI cursor, past SQLAlchemy's events.
        fastsql.OBSERVERS.append(self._seen_fast)

    def _seen_fast(self, statement: str, executemany: bool) -> None:
        self.by_kind[_statement_kind(statement) + (" (many)" if executemany else "")] += 1
        self.rows += 1

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        self.by_kind[_statement_kind(statement) + (" (many)" if executemany else "")] += 1
        self.rows += len(parameters) if executemany else 1

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def _statement_kind(sql: str) -> str:
    words = sql.split()
    if not words:
        return "?"
    verb = words[0].upper()
    upper = [w.upper() for w in words]
    for key in ("INTO", "UPDATE", "FROM"):
        if key in upper[:40]:
            i = upper.index(key)
            if i + 1 < len(words):
                table = words[i + 1].strip('"(')
                return f"{verb} {table}"
    return verb


class Harness:
    """The gateway plus the handsets' driver, in one process or two."""

    def __init__(self, url: str, *, sim_process: bool, window: int, accounts: int,
                 seed_accounts: bool, count_statements: bool = False, instances: int = 1,
                 log_dir: str | None = None, **settings: Any) -> None:
        self.url = url
        self.sim_process = sim_process
        self.instances = instances  # PostgreSQL: more gateway processes, one bind each
        self.log_dir = log_dir
        self.others: list[asyncio.subprocess.Process] = []
        self.window = window
        self.accounts = accounts
        self.seed_accounts = seed_accounts
        self.settings = settings
        self.statements = StatementCounter() if count_statements else None
        self.sim: SimProcess | None = None
        self.gw: Gateway

    async def start(self) -> None:
        extra: dict[str, Any] = dict(window=self.window, **self.settings)
        if self.sim_process:
            self.sim = SimProcess()
            port = await self.sim.start()
            extra.update(smsc_host="127.0.0.1", smsc_port=port)
        self.gw = Gateway(Settings(**gateway_overrides(self.url, **extra)))
        await self.gw.start(api=False)
        if self.seed_accounts:
            now = datetime.now(UTC)
            assert self.gw.store is not None
            await self.gw.store.write(lambda c: mix.seed(c, accounts=self.accounts, now=now))
        await self.gw.client.wait_bound()
        if self.instances > 1:
            await self._start_others(extra)
        if self.statements is not None:
            assert self.gw.store is not None
            self.statements.attach(self.gw.store.engine)

    async def _start_others(self, extra: dict[str, Any]) -> None:
        """Instances 2..N as `smsgw up` processes (as deployed), each with its own bind to
        the SMSC; the simulator hands MOs and receipts to the binds in turn."""
        assert self.sim is not None
        env = dict(os.environ, DATABASE_URL=self.url, SMSGW_WINDOW=str(self.window),
                   SMSGW_POLL_INTERVAL="0.05", SMSGW_RATE_LIMIT_MESSAGES="1000000",
                   SMSGW_RATE_LIMIT_SECONDS="1", SMSGW_SMPP_SERVER_PORT="0",
                   SMSGW_LOG_LEVEL=logging.getLevelName(logging.getLogger().level))
        for i in range(2, self.instances + 1):
            log = Path(self.log_dir or ".") / f"gateway-{i}.log"
            self.others.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "up", "--smsc-host", "127.0.0.1",
                "--smsc-port", str(extra["smsc_port"]), "--api-port", "0",
                cwd=str(REPO), env={**env, "SMSGW_INSTANCE": f"bench-{i}"},
                stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while (await self.sim.call("stats"))["sim"]["binds"]["current"] < self.instances:
            for proc in self.others:
                if proc.returncode is not None:
                    raise RuntimeError(f"an extra gateway exited (rc={proc.returncode}); "
                                       f"see its log in {self.log_dir}")
            if time.monotonic() > deadline:
                raise RuntimeError("the extra gateways did not bind within 60 s")
            await asyncio.sleep(0.2)

    def cpu_seconds(self) -> float:
        """CPU of every gateway process (this one and the extra instances)."""
        return cpu_seconds() + sum(cpu_seconds(p.pid) for p in self.others
                                   if p.returncode is None)

    async def drive(self, **run: Any) -> dict[str, Any]:
        if self.sim is not None:
            return await self.sim.call("run", **run)
        return await SimDriver(self.gw.simulator,
                               self.gw.settings.source_addr).run(**run)

    async def db_counts(self) -> dict[str, int]:
        assert self.gw.store is not None
        return await self.gw.store.read(mix.db_counts)

    async def stop(self) -> None:
        try:
            for proc in self.others:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in self.others:
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
            if hasattr(self, "gw"):
                await self.gw.stop()
        finally:
            if self.sim is not None:
                await self.sim.stop()


def check(res: dict[str, Any], db: dict[str, int] | None) -> tuple[bool, str]:
    """Nothing lost, nothing doubled, every reply of the expected kind, the DB as sent."""
    kinds = res["kinds"]
    want_codes = {"OK": sum(n for k, n in kinds.items() if k not in ("garbage", "long"))}
    e01 = kinds.get("garbage", 0) + kinds.get("long", 0)
    if e01:
        want_codes["E01"] = e01
    problems = []
    if res["missing"]:
        problems.append(f"{res['missing']} MOs without a reply")
    if res["extra"]:
        problems.append(f"{res['extra']} replies doubled")
    if res["reply_codes"] != want_codes:
        problems.append(f"reply codes {res['reply_codes']} ≠ expected {want_codes}")
    if db is not None and db != res["expect_db"]:
        problems.append(f"database {db} ≠ sent {res['expect_db']}")
    detail = (f"{res['count']} MOs, {res['replies']} replies, {res['missing']} missing, "
              f"{res['extra']} doubled")
    if db is not None:
        detail += (f", orders {db['orders']}/{res['expect_db']['orders']}, sales reports "
                   f"{db['sales_reports']}/{res['expect_db']['sales_reports']}")
    if problems:
        return False, f"check: FAILED — {'; '.join(problems)} ({detail})"
    return True, f"check: OK — {detail}"


def machine() -> dict[str, Any]:
    return {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "loop": eventloop.name(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


async def run(args: argparse.Namespace) -> int:
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/bench.db"
    mode = "mix" if args.mix else "help"
    h = Harness(url, sim_process=args.sim_process, window=args.window,
                accounts=args.accounts, seed_accounts=args.mix, instances=args.instances,
                log_dir=tmp.name,
                count_statements=args.count_statements)
    where = "separate process" if args.sim_process else "same process"
    print(f"sending {args.count} MOs ({mode}) at {args.rate or 'max'}/s over {db_kind(url)}, "
          f"simulator in {where}, {args.instances} gateway instance(s) …", flush=True)
    try:
        await h.start()
        cpu0, machine_cpu = h.cpu_seconds(), MachineCpu()
        res = await h.drive(mode=mode, count=args.count, rate=args.rate,
                            pin_share=args.pin_share, accounts=args.accounts, seed=args.seed,
                            settle=args.settle, timeout=args.timeout, progress=True)
        gw_cpu, busy_s = h.cpu_seconds() - cpu0, machine_cpu.busy_seconds()
        stmts = None
        if h.statements is not None:  # before the DB check's own queries
            stmts = dict(h.statements.by_kind)
            n_stmts = h.statements.total
        db = await h.db_counts() if args.mix else None
    finally:
        await h.stop()
        # With --instances, the extra gateways' lines count too (a log file each, here).
        lines_others = sum(log_lines(Path(tmp.name) / f"gateway-{i}.log")
                           for i in range(2, args.instances + 1))
        tmp.cleanup()
    ok, verdict = check(res, db)
    n, elapsed = args.count, res["elapsed_s"]
    # The drive ends with a quiet --settle wait: the busy time is that of the MOs' flow.
    busy = busy_s / elapsed if elapsed > 0 else 0.0
    replies = res["replies"] - res["extra"]
    mo_s = replies / elapsed if elapsed > 0 else 0.0
    print(f"replies received: {replies}/{n} in {elapsed:.2f}s → {mo_s:,.0f} MO/s end to end")
    print(f"MO→reply latency: {fmt_latency(res['latency'])}")
    if args.mix:
        for kind, p in sorted(res["latency_by_kind"].items()):
            print(f"  {kind:<8} {res['kinds'].get(kind, 0):>6} MOs  {fmt_latency(p)}")
    if args.sim_process:
        cpu_line = (f"CPU per MO: gateway {gw_cpu / n * 1000:.2f} ms, simulator "
                    f"{res['cpu_s'] / n * 1000:.2f} ms")
        both_ms = (gw_cpu + res["cpu_s"]) / n * 1000
    else:
        cpu_line = f"CPU per MO: gateway + simulator (one process) {gw_cpu / n * 1000:.2f} ms"
        both_ms = gw_cpu / n * 1000
    print(cpu_line)
    print(cpu_budget_line(both_ms, busy, machine_cpu.cores, "MO"))
    lines = log_lines(args.log_path) + lines_others
    print(f"gateway log: {lines:,} lines at {args.log_level} ({lines / max(n, 1):.1f} a MO)")
    print(f"reply codes: {res['reply_codes']}; SMSC: {res['sim']}")
    if stmts is not None:
        print(f"SQL statements per MO: {n_stmts / n:.1f} ({n_stmts} in all), by kind:")
        for kind, k in sorted(stmts.items(), key=lambda kv: -kv[1]):
            print(f"  {k / n:>6.2f}  {kind}")
    print(verdict)
    write_json(args.json, {
        "benchmark": "e2e", "db": db_kind(url), "mode": mode, "count": n,
        "rate_target": args.rate, "pin_share": args.pin_share if args.mix else 0.0,
        "sim_process": args.sim_process, "window": args.window, "mo_per_s": mo_s,
        "instances": args.instances,
        "elapsed_s": elapsed, "latency": res["latency"], "replies": replies,
        "missing": res["missing"], "extra": res["extra"], "reply_codes": res["reply_codes"],
        "kinds": res["kinds"], "db_expected": res["expect_db"], "db_found": db,
        "cpu_ms_per_mo_gateway": gw_cpu / n * 1000,
        "cpu_ms_per_mo_sim": res["cpu_s"] / n * 1000 if args.sim_process else None,
        "sql_per_mo": n_stmts / n if stmts is not None else None,
        "busy_cores": busy, "cpu_ceiling_per_s": cpu_ceiling(both_ms, machine_cpu.cores),
        "log_level": args.log_level, "log_lines": lines,
        "ok": ok, "machine": machine()})
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="MOs to send (default 2000)")
    parser.add_argument("--rate", type=float, default=0,
                        help="open-loop MO/s (default 0 = all at once)")
    parser.add_argument("--window", type=int, default=50, help="SMPP window (default 50)")
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--sim-process", action="store_true",
                        help="run the simulator (and the handsets) in a separate process")
    parser.add_argument("--mix", action="store_true",
                        help="the realistic MO mix instead of HELP from new handsets")
    parser.add_argument("--pin-share", type=float, default=0.10,
                        help="share of PIN-bearing commands (orders) in --mix (default 0.10)")
    parser.add_argument("--accounts", type=int, default=500,
                        help="registered retailers sending the --mix (default 500)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the mix")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="give up after this many seconds without a new reply")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds to wait after the last reply for doubles (default 2)")
    parser.add_argument("--instances", type=int, default=1,
                        help="PostgreSQL: gateway processes sharing the database, each with "
                             "its own bind (the extra ones run `smsgw up`; CPU counts them "
                             "all; needs --sim-process and --database-url postgresql://…)")
    parser.add_argument("--count-statements", action="store_true",
                        help="count the SQL statements the gateway runs per MO")
    parser.add_argument("--json", metavar="FILE", help="write a one-line JSON summary")
    parser.add_argument("--short", action="store_true",
                        help="a tiny run (60 MOs, 20 accounts) that takes seconds")
    add_log_flags(parser)
    args = parser.parse_args()
    if args.instances < 1 or (args.instances > 1 and not (
            args.sim_process and (args.database_url or "").startswith("postgresql"))):
        parser.error("--instances above 1 needs --sim-process and a PostgreSQL --database-url "
                     "(SQLite has one writer process by design)")
    if args.short:
        args.count, args.accounts, args.settle = 60, 20, 0.5
        args.timeout = min(args.timeout, 30.0)
    args.log_path = start_logging(args)
    sys.exit(eventloop.run(run(args)))


if __name__ == "__main__":
    main()
