"""Crash safety, for real: SIGKILL the gateway under load, restart it, reconcile.

The gateway runs as a process of its own (`python -m gateway.cli up`, as an operator runs
it), the SMSC simulator and its handsets in another (`simdriver.py`, via `_bench.SimProcess`).
While MOs (orders, sales reports, queries, HELP, garbage, long texts: `mix.py`) and API sends
(`POST /messages`) flow, the gateway is killed with SIGKILL at random moments `--kills`
times and started again; then it is left to finish, stopped with SIGTERM (a graceful drain
must exit 0), and the database and the handsets' inboxes are reconciled:

- every MO part the simulator injected was acknowledged (deliver_sm_resp ESME_ROK) and is
  in the database exactly once as an original (redeliveries are rows of their own marked
  `duplicate_of`), every MO row has a disposition, none failed, none left unprocessed;
- the orders and sales reports in the database are exactly those sent (none lost, none
  doubled);
- every MT the API accepted (2xx) reached its handset at least once (lost = 0);
- a text that reached a handset more often than it was queued is a duplicate: it counts as
  flagged when its row is marked `possibly_duplicate`, else as silent (must be 0).

`--outage S` also takes the database away for S seconds in the middle of the run (PostgreSQL:
connections refused and the gateway's backends terminated; SQLite: another connection holds
an exclusive lock), without a restart: the gateway must ride it out.

    python benchmarks/chaos.py --kills 8 --duration 60
    python benchmarks/chaos.py --kills 5 --outage 30 --database-url postgresql://…/chaos
    python benchmarks/chaos.py --short --json -

PostgreSQL: give it a database of its own (`--outage` on PostgreSQL needs a *dedicated*
database: it refuses connections to it for a while). tests/test_chaos.py runs the short form
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import REPO, SimProcess, db_kind, free_port, write_json  # noqa: I001
import mix

import httpx
import sqlalchemy as sa

log = logging.getLogger("chaos")

INSTANCE = "chaos"  # stable across restarts: a restart releases the claims of the killed one
API_PHONE = "86137{:08d}"


@dataclass
class Plan:
    """One chaos run (the short form is what the test suite runs)."""

    kills: int = 3
    duration: float = 12.0  # seconds of load, kills spread over it
    mo_rate: float = 8.0  # MOs per second
    api_rate: float = 8.0  # API sends per second
    accounts: int = 20
    outage: float = 0.0  # seconds without a database, once, mid-run (0 = none)
    settle_timeout: float = 60.0
    seed: int = 1
    drain_timeout: float = 5.0


@dataclass
class Tally:
    kills: int = 0
    starts: int = 0
    api_accepted: list[tuple[str, str]] = field(default_factory=list)
    api_refused: Counter[str] = field(default_factory=Counter)
    mos: int = 0
    outage_api_503: int = 0


class GatewayProcess:
    """`python -m gateway.cli up` against the simulator process, on ephemeral ports."""

    def __init__(self, url: str, smsc_port: int, workdir: Path, *,
                 drain_timeout: float = 5.0, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.smsc_port = smsc_port
        self.workdir = workdir
        self.api_port = free_port()
        self.drain_timeout = drain_timeout
        self.extra_env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = workdir / "gateway.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "SMSGW_INSTANCE": INSTANCE, "SMSGW_SMPP_SERVER_PORT": "0",
            "SMSGW_POLL_INTERVAL": "0.05", "SMSGW_RATE_LIMIT_MESSAGES": "1000000",
            "SMSGW_RATE_LIMIT_SECONDS": "1", "SMSGW_RECONNECT_MIN": "0.2",
            "SMSGW_RECONNECT_MAX": "1", "SMSGW_DRAIN_TIMEOUT": str(self.drain_timeout),
            "SMSGW_SCHEDULER_ENABLED": "false", "SMSGW_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1"})
        env.pop("DATABASE_URL", None)
        env.update(self.extra_env)
        return env

    async def start(self, timeout: float = 60.0) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "up", "--database-url", self.url,
                "--smsc-host", "127.0.0.1", "--smsc-port", str(self.smsc_port),
                "--api-port", str(self.api_port), cwd=str(REPO), env=self.env(),
                stdout=out, stderr=asyncio.subprocess.STDOUT)
        await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise RuntimeError(f"gateway exited rc={self.proc.returncode} at start; "
                                       f"log: {self.log_path}\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base}/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"gateway not ready after {timeout:g}s\n{self.tail()}")
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    async def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (a graceful drain) and its exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return -9

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- database outages, caused for real ------------------------------------------------------------


class Outage:
    """Takes the database away from the gateway for a while, without touching the server.

    PostgreSQL: the (dedicated!) database refuses new connections (ALLOW_CONNECTIONS false)
    and the backends connected to it are terminated, again and again, for ``seconds``.
    SQLite: another connection holds an exclusive lock for ``seconds`` (writers wait up to
    the busy timeout, then fail; readers of a WAL database go on).
    """

    def __init__(self, url: str) -> None:
        self.url = url

    async def run(self, seconds: float) -> None:
        if db_kind(self.url) == "sqlite":
            await asyncio.to_thread(self._sqlite_lock, seconds)
        else:
            await asyncio.to_thread(self._pg_refuse, seconds)

    def _sqlite_lock(self, seconds: float) -> None:
        import sqlite3

        path = sa.engine.make_url(self.url).database
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    def _pg_refuse(self, seconds: float) -> None:
        from store.db import make_engine

        target = sa.engine.make_url(self.url)
        name = target.database
        admin = make_engine(target.set(database="postgres", query={}),
                            isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as c:
                c.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                try:
                    end = time.monotonic() + seconds
                    while time.monotonic() < end:
                        c.execute(sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": name})
                        time.sleep(0.2)
                finally:
                    c.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        finally:
            admin.dispose()


# -- the run ---------------------------------------------------------------------------------------


async def _prepare(url: str, accounts: int) -> str:
    from store import admin
    from store.store import Store

    now = datetime.now(UTC)

    def setup() -> tuple[Store, str]:
        store = Store.open(url)
        store.run(lambda c: mix.seed(c, accounts=accounts, now=now))
        _, key = store.run(lambda c: admin.create_api_key(
            c, name="chaos", role="admin", now=now, created_by="chaos"))
        return store, str(key)

    store, key = await asyncio.to_thread(setup)
    await store.close()
    return key


async def _drive_mos(sim: SimProcess, m: mix.Mix, plan: Plan, tally: Tally,
                     stop: asyncio.Event) -> None:
    i = 0
    start = time.monotonic()
    while not stop.is_set():
        due = start + i / plan.mo_rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        batch = [m.next(0.0) for _ in range(max(1, int(plan.mo_rate // 4)))]
        await sim.call("inject", mos=[[mo.phone, mo.text] for mo in batch])
        tally.mos += len(batch)
        i += len(batch)


async def _drive_api(base: str, key: str, plan: Plan, tally: Tally,
                     stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    n = 0
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=5.0, headers=headers) as client:
        while not stop.is_set():
            due = start + n / plan.api_rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            to, text = API_PHONE.format(n % 50), f"chaos mt {n}"
            n += 1
            try:
                r = await client.post(f"{base}/messages", json={"to": to, "text": text})
            except httpx.HTTPError as exc:
                tally.api_refused[type(exc).__name__] += 1
                continue
            if 200 <= r.status_code < 300:
                tally.api_accepted.append((to, text))
            else:
                tally.api_refused[str(r.status_code)] += 1


async def _settle(url: str, sim: SimProcess, tally: Tally, timeout: float) -> dict[str, Any]:
    """Wait until every MO is acknowledged and processed, the queue is empty and every
    accepted MT has landed (or `timeout` passes without progress)."""
    from store.store import Store

    store = Store(url)
    try:
        last, idle_since = None, time.monotonic()
        while True:
            inbox = await sim.call("inbox")
            landed = Counter(map(tuple, inbox["received"]))
            missing = sum(1 for k in set(tally.api_accepted) if not landed.get(k))
            q = await store.read(_open_work)
            state = (inbox["mo_pending"], q, missing, len(inbox["received"]))
            done = inbox["mo_pending"] == 0 and not any(q.values()) and missing == 0
            if done:
                await asyncio.sleep(1.0)  # late doubles land too
                return await sim.call("inbox")
            if state != last:
                last, idle_since = state, time.monotonic()
            elif time.monotonic() - idle_since > timeout:
                log.warning("settle: no progress for %gs: %s", timeout, state)
                return inbox
            await asyncio.sleep(0.3)
    finally:
        await store.close()


def _open_work(conn: Any) -> dict[str, int]:
    from store.models import inbound_messages as im
    from store.models import outbound_messages as om

    def count(table: Any, *where: Any) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(
            *where)).scalar_one())

    return {"mt_open": count(om, om.c.status.in_(("queued", "sending"))),
            "mo_unprocessed": count(im, im.c.status == "received")}


def reconcile(conn: Any, inbox: dict[str, Any], tally: Tally,
              expect_db: dict[str, int]) -> dict[str, Any]:
    """The counts, from the database and the handsets (see the module docstring)."""
    from store.models import inbound_messages as im
    from store.models import outbound_messages as om

    rows = conn.execute(sa.select(im.c.content_key, im.c.duplicate_of, im.c.status,
                                  im.c.disposition)).all()
    originals = [r for r in rows if r.duplicate_of is None]
    per_key = Counter(r.content_key for r in originals)
    out = conn.execute(sa.select(om.c.dest_addr, om.c.text, om.c.status,
                                 om.c.possibly_duplicate)).all()
    queued_rows: Counter[tuple[str, str]] = Counter()
    flagged: set[tuple[str, str]] = set()
    for r in out:
        queued_rows[(r.dest_addr, r.text)] += 1
        if r.possibly_duplicate:
            flagged.add((r.dest_addr, r.text))
    landed = Counter((m[0], m[1]) for m in inbox["received"])
    dup_flagged = dup_silent = 0
    for k, n in landed.items():
        extra = n - queued_rows.get(k, 0)
        if extra > 0:
            if k in flagged:
                dup_flagged += extra
            else:
                dup_silent += extra
    accepted = set(tally.api_accepted)
    return {
        "mo_parts_injected": inbox["mo_injected"],
        "mo_parts_acked": inbox["mo_injected"] - inbox["mo_pending"],
        "mo_parts_unacked": inbox["mo_pending"],
        "mo_rows_original": len(originals),
        "mo_processed_twice": sum(n - 1 for n in per_key.values() if n > 1),
        "mo_redeliveries": len(rows) - len(originals),
        "mo_unprocessed": sum(1 for r in rows if r.status == "received"),
        "mo_without_disposition": sum(1 for r in rows if r.disposition is None),
        "mo_failed": sum(1 for r in rows if r.status == "failed"),
        "db_expected": expect_db,
        "db_found": mix.db_counts(conn),
        "mt_accepted": len(tally.api_accepted),
        "mt_accepted_delivered": sum(1 for k in accepted if landed.get(k)),
        "mt_lost": sum(1 for k in accepted if not landed.get(k)),
        "mt_left_open": sum(1 for r in out if r.status in ("queued", "sending")),
        "mt_flagged_possibly_duplicate": sum(1 for r in out if r.possibly_duplicate),
        "duplicated_flagged": dup_flagged,
        "duplicated_silently": dup_silent,
        "handset_messages": len(inbox["received"]),
    }


def verdict(counts: dict[str, Any]) -> list[str]:
    """What is wrong (empty: nothing)."""
    c = counts
    problems = []
    if c["mo_parts_unacked"]:
        problems.append(f"{c['mo_parts_unacked']} MO parts never acknowledged")
    if c["mo_rows_original"] != c["mo_parts_injected"]:
        problems.append(f"{c['mo_rows_original']} MOs stored for "
                        f"{c['mo_parts_injected']} injected")
    for key in ("mo_processed_twice", "mo_unprocessed", "mo_without_disposition", "mo_failed",
                "mt_lost", "mt_left_open", "duplicated_silently"):
        if c[key]:
            problems.append(f"{key} = {c[key]}")
    if c["db_found"] != c["db_expected"]:
        problems.append(f"database {c['db_found']} ≠ sent {c['db_expected']}")
    return problems


async def run_chaos(url: str, plan: Plan, workdir: Path) -> dict[str, Any]:
    """One run (see the module docstring); returns the counts, `problems` and `ok`."""
    rng = random.Random(plan.seed)
    key = await _prepare(url, plan.accounts)
    sim = SimProcess()
    port = await sim.start(record=True)
    gw = GatewayProcess(url, port, workdir, drain_timeout=plan.drain_timeout)
    tally = Tally()
    m = mix.Mix("mix", seed=plan.seed, pin_share=0.15, accounts=plan.accounts)
    stop = asyncio.Event()
    rc = None
    started = time.monotonic()
    try:
        await gw.start()
        tally.starts += 1
        drivers = [asyncio.create_task(_drive_mos(sim, m, plan, tally, stop)),
                   asyncio.create_task(_drive_api(gw.base, key, plan, tally, stop))]
        # Kills at random moments, spread over the duration; the outage, if any, between.
        moments = sorted(rng.uniform(0.1, 1.0) * plan.duration for _ in range(plan.kills))
        outage_at = plan.duration / 2 if plan.outage else None
        t0 = time.monotonic()
        for at in moments:
            if outage_at is not None and at > outage_at:
                await asyncio.sleep(max(0.0, t0 + outage_at - time.monotonic()))
                await _outage(url, plan.outage, gw, tally)
                outage_at = None
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            gw.kill()
            await gw.wait()
            tally.kills += 1
            await asyncio.sleep(rng.uniform(0.0, 1.0))  # down a while: the SMSC queues MOs
            await gw.start()
            tally.starts += 1
        if outage_at is not None:
            await _outage(url, plan.outage, gw, tally)
        await asyncio.sleep(max(0.0, t0 + plan.duration - time.monotonic()))
        stop.set()
        await asyncio.gather(*drivers)
        inbox = await _settle(url, sim, tally, plan.settle_timeout)
        rc = await gw.terminate()
    finally:
        stop.set()
        if gw.proc is not None and gw.proc.returncode is None:
            gw.proc.kill()
            await gw.proc.wait()
        try:
            inbox_final = await sim.call("inbox")
        except Exception:
            inbox_final = None
        await sim.stop()
    from store.store import Store

    store = Store(url)
    try:
        counts = await store.read(lambda c: reconcile(c, inbox_final or inbox, tally,
                                                      m.stats.summary()))
    finally:
        await store.close()
    counts.update(kills=tally.kills, starts=tally.starts, mos_sent=tally.mos,
                  api_refused=dict(tally.api_refused), outage_s=plan.outage,
                  outage_api_503=tally.outage_api_503, sigterm_exit=rc,
                  elapsed_s=time.monotonic() - started)
    problems = verdict(counts)
    if rc != 0:
        problems.append(f"graceful stop exited {rc}")
    counts["problems"] = problems
    counts["ok"] = not problems
    if problems:
        counts["gateway_log_tail"] = gw.tail(40)
    return counts


async def _outage(url: str, seconds: float, gw: GatewayProcess, tally: Tally) -> None:
    """The database goes away for `seconds`; the gateway must stay up and recover."""
    log.warning("database outage for %gs", seconds)
    task = asyncio.create_task(Outage(url).run(seconds))
    async with httpx.AsyncClient(timeout=2.0) as client:
        while not task.done():
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{gw.base}/readyz")).status_code == 503:
                    tally.outage_api_503 += 1
            await asyncio.sleep(0.5)
    await task
    assert gw.proc is not None and gw.proc.returncode is None, "gateway died in the outage"
    await gw.wait_ready(60.0)


def summary_lines(c: dict[str, Any]) -> list[str]:
    return [
        f"kills: {c['kills']} (SIGKILL), starts: {c['starts']}, outage: {c['outage_s']:g}s, "
        f"graceful stop exit: {c['sigterm_exit']}",
        f"MO parts: injected {c['mo_parts_injected']}, acknowledged {c['mo_parts_acked']}, "
        f"stored once {c['mo_rows_original']}, processed twice {c['mo_processed_twice']}, "
        f"redeliveries recognised {c['mo_redeliveries']}",
        f"orders/sales reports: found {c['db_found']}, sent {c['db_expected']}",
        f"MT (API): accepted {c['mt_accepted']}, delivered {c['mt_accepted_delivered']}, "
        f"lost {c['mt_lost']}, refused while down {sum(c['api_refused'].values())}",
        f"duplicates at handsets: flagged {c['duplicated_flagged']}, silent "
        f"{c['duplicated_silently']} (rows flagged possibly_duplicate: "
        f"{c['mt_flagged_possibly_duplicate']})",
    ]


async def main_async(args: argparse.Namespace) -> int:
    plan = Plan(kills=args.kills, duration=args.duration, mo_rate=args.mo_rate,
                api_rate=args.api_rate, accounts=args.accounts, outage=args.outage,
                seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/chaos.db"
        print(f"chaos: {plan.kills} kills over {plan.duration:g}s on {db_kind(url)}, "
              f"{plan.mo_rate:g} MO/s + {plan.api_rate:g} API sends/s"
              + (f", a {plan.outage:g}s database outage" if plan.outage else "") + " …",
              flush=True)
        counts = await run_chaos(url, plan, Path(tmp))
    for line in summary_lines(counts):
        print(line)
    if counts["ok"]:
        print(f"check: OK — lost 0, duplicated silently 0, {counts['kills']} kills")
    else:
        print(f"check: FAILED — {'; '.join(counts['problems'])}")
        print(counts.get("gateway_log_tail", ""))
    write_json(args.json, {"benchmark": "chaos", "db": db_kind(url),
                           **{k: v for k, v in counts.items() if k != "gateway_log_tail"}})
    return 0 if counts["ok"] else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=5, help="SIGKILLs (default 5)")
    ap.add_argument("--duration", type=float, default=40.0,
                    help="seconds of load, kills spread over it (default 40)")
    ap.add_argument("--mo-rate", type=float, default=10.0, help="MOs per second (default 10)")
    ap.add_argument("--api-rate", type=float, default=10.0,
                    help="API sends per second (default 10)")
    ap.add_argument("--accounts", type=int, default=50, help="retailers (default 50)")
    ap.add_argument("--outage", type=float, default=0.0,
                    help="also take the database away this many seconds mid-run")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--database-url",
                    help="default: a temporary SQLite file; PostgreSQL: a dedicated database")
    ap.add_argument("--json", metavar="FILE", help="write a one-line JSON summary")
    ap.add_argument("--short", action="store_true", help="3 kills over 12 s")
    args = ap.parse_args()
    if args.short:
        args.kills, args.duration, args.accounts = 3, 12.0, 20
        args.mo_rate = args.api_rate = 8.0
    logging.basicConfig(level=logging.WARNING)
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
