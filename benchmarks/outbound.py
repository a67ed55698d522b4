"""Outbound benchmark: broadcast enqueue rate, dispatch rate, and a reply's wait meanwhile.

1. Enqueue: N recipients queued broadcast-style (bulk, priority 3) through the store's
   group-commit writer, `outbound.enqueue_many` in chunks of --chunk rows (one transaction
   each, fsync on commit) - nothing is dispatching yet.
2. Dispatch: the real `Gateway` starts against the simulator (throttle off, receipts on)
   and drains the queue; messages/s = N / time until every message has its submit_sm_resp
   recorded.
3. While it drains, a priority-1 reply is queued at 10 %, 30 %, 50 %, 70 % and 90 % of the
   drain; its wait is the time from enqueue (committed) to its submit_sm_resp being recorded.
   At the same moments a handset sends an MO (BAL): the time until it is acknowledged (its
   row committed) and until its answer is submitted - inbound must not starve.
4. Receipts: the run waits until every message's receipt is matched (status delivered);
   "receipts matched" counts them, and the check fails (exit 1) unless all N + the replies
   were submitted once and matched.

The gateway's RSS and the queue depth are sampled every --sample seconds from the start of
the drain (RSS includes the simulator unless --sim-process). For the 1,000,000-message
figure: `--count 1000000 --sim-process` (about 2 GB of SQLite; the drain takes as long as
the dispatch rate says).

By default the simulator runs in this process (sharing the event loop and CPU with the
gateway: a floor). --sim-process runs it as a separate process, closer to a real SMSC.

    python benchmarks/outbound.py                     # 20,000 recipients, in-process SMSC
    python benchmarks/outbound.py --count 100000 --sim-process
    python benchmarks/outbound.py --database-url postgresql://postgres@127.0.0.1/test
    python benchmarks/outbound.py --short --json /tmp/outbound.json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
import yaml
from _bench import (  # first: puts the repo on sys.path
    MachineCpu,
    SimProcess,
    add_log_flags,
    cpu_budget_line,
    cpu_ceiling,
    cpu_seconds,
    db_kind,
    gateway_overrides,
    log_lines,
    queue_sample,
    rss_mb,
    start_logging,
    write_json,
)
from e2e import machine
from simdriver import SimDriver

from common.phones import canonical
from gateway import eventloop
from gateway.app import Gateway
from gateway.config import Settings
from store import outbound
from store.models import inbound_messages, outbound_messages
from store.store import Store

REPLY_AT = (0.1, 0.3, 0.5, 0.7, 0.9)


async def enqueue_phase(url: str, count: int, chunk: int) -> float:
    store = await asyncio.to_thread(Store.open, url)
    try:
        now = datetime.now(UTC)
        start = time.perf_counter()
        done = 0
        step = max(chunk, count // 10)
        next_report = step
        while done < count:
            n = min(chunk, count - done)
            items = [{"dest_addr": f"86139{done + i:08d}",
                      "text": f"Outage notice: power off 09:00-11:00 in area {done + i}",
                      "priority": 3} for i in range(n)]
            await store.write(lambda c, it=items: outbound.enqueue_many(
                c, it, now=now, source_addr="10690"))
            done += n
            if done >= next_report or done == count:
                el = time.perf_counter() - start
                print(f"  enqueued {done:>7}/{count}  {done / el:>9,.0f} msgs/s", flush=True)
                next_report += step
        return count / (time.perf_counter() - start)
    finally:
        await store.close()


async def _submitted_ids(gw: Gateway) -> int:
    return sum(s.submitted for s in gw.dispatcher.senders.values())


def _status_counts(conn: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in conn.execute(
        sa.select(outbound_messages.c.status, sa.func.count())
        .group_by(outbound_messages.c.status))}


class Sampler:
    """Gateway RSS and queue depth every `every` seconds, in the background."""

    def __init__(self, gw: Gateway, every: float) -> None:
        self.gw, self.every = gw, every
        self.rows: list[dict[str, Any]] = []
        self._t0 = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        assert self.gw.store is not None
        while True:
            q = await self.gw.store.read(queue_sample)
            row = {"t": time.perf_counter() - self._t0, "rss_mb": rss_mb(), **q}
            self.rows.append(row)
            print(f"  [{row['t']:>6.1f}s] RSS {row['rss_mb']:>6.1f} MB, queued {q['queued']:>8}, "
                  f"sending {q['sending']:>5}, receipts unmatched {q['receipts_unmatched']:>5}",
                  flush=True)
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def binds_file(directory: str, binds: int, port: int, window: int) -> str:
    """A connections file with ``binds`` equal transceiver binds to one SMSC account, as an
    operator opens several binds to raise throughput: the SMSC's deliver_sm window (and so
    the receipts in flight) is per bind."""
    path = Path(directory) / "binds.yaml"
    path.write_text(yaml.safe_dump({"connections": [
        {"name": f"smsc{i + 1}", "host": "127.0.0.1", "port": port, "system_id": "smsgw",
         "password": "secret", "window": window} for i in range(binds)]}))
    return str(path)


async def dispatch_phase(url: str, count: int, *, sim: SimProcess | None, sim_port: int | None,
                         window: int, batch: int, sample: float, timeout: float,
                         binds: int = 1, workdir: str = ".") -> dict[str, Any]:
    extra: dict[str, Any] = dict(window=window, claim_batch=batch, instance="bench-outbound")
    if sim_port is not None:
        extra.update(smsc_host="127.0.0.1", smsc_port=sim_port)
    if binds > 1:
        assert sim_port is not None
        extra.update(connections_file=binds_file(workdir, binds, sim_port, window))
    gw = Gateway(Settings(**gateway_overrides(url, **extra)))
    start = time.perf_counter()
    cpu0, machine_cpu = cpu_seconds(), MachineCpu()
    sim_cpu0 = cpu_seconds(sim.pid) if sim is not None else 0.0
    await gw.start(api=False)
    if gw.simulator is not None:
        SimDriver(gw.simulator)  # empties the handsets' inboxes as messages land: flat RSS
    sampler = Sampler(gw, sample)
    try:
        for client in gw.clients:
            await client.wait_bound()
        waits: list[tuple[float, float]] = []
        probes: list[tuple[float, float, float]] = []  # (at, acknowledged s, answered s)
        probe_parts = probe_msgs = 0
        marks = list(REPLY_AT)
        step = max(1, count // 10)
        next_report = step
        while True:
            sent = await _submitted_ids(gw)
            if marks and sent >= marks[0] * count:
                at = marks.pop(0)
                wait, (acked, answered, parts) = await asyncio.gather(
                    _reply_wait(gw), _mo_probe(gw, sim, f"8613600{len(probes):06d}"))
                waits.append((at, wait))
                probes.append((at, acked, answered))
                probe_parts += parts
                probe_msgs += 1
                continue
            if sent >= next_report:
                el = time.perf_counter() - start
                print(f"  submitted {sent:>7}/{count}  {sent / el:>9,.0f} msgs/s", flush=True)
                next_report += step
            if sent >= count + len(REPLY_AT) - len(marks) + probe_parts:
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - start
        throttled = sum(s.throttled for s in gw.dispatcher.senders.values())
        # Receipts: every message delivered (its receipt matched), or no progress for a while.
        assert gw.store is not None
        total = count + len(REPLY_AT) + probe_msgs
        seen, idle_since = -1, time.perf_counter()
        while True:
            statuses = await gw.store.read(_status_counts)
            delivered = statuses.get("delivered", 0)
            if delivered >= total:
                break
            if delivered != seen:
                seen, idle_since = delivered, time.perf_counter()
            elif time.perf_counter() - idle_since > timeout:
                break
            await asyncio.sleep(0.1)
        receipts_elapsed = time.perf_counter() - start
        return {"elapsed": elapsed, "rate": count / elapsed, "waits": waits,
                "probes": probes, "expected_parts": count + len(REPLY_AT) + probe_parts,
                "expected_msgs": total,
                "throttled": throttled, "submitted": await _submitted_ids(gw),
                "statuses": statuses, "receipts_matched": delivered,
                "receipts_elapsed": receipts_elapsed,
                "cpu_s": cpu_seconds() - cpu0,
                "sim_cpu_s": cpu_seconds(sim.pid) - sim_cpu0 if sim is not None else None,
                "busy_cores": machine_cpu.busy_cores(), "cores": machine_cpu.cores,
                "samples": sampler.rows}
    finally:
        await sampler.stop()
        await gw.stop()


async def _mo_probe(gw: Gateway, sim: SimProcess | None, phone: str
                    ) -> tuple[float, float, int]:
    """A person's MO in the middle of the drain (issue 10: inbound is never starved):
    seconds until it is acknowledged (its row committed: the deliver_sm_resp follows the
    commit at once) and until its answer is submitted to the SMSC; and the answer's parts."""
    t0 = time.perf_counter()
    if sim is not None:
        await sim.call("inject", mos=[[phone, "BAL"]])
    else:
        assert gw.simulator is not None
        await gw.simulator.inject_mo(phone, "10690", "BAL")
    assert gw.store is not None
    source = canonical(phone)
    acked: float | None = None
    while True:
        mo_id = await gw.store.read(lambda c: c.execute(
            sa.select(inbound_messages.c.id).where(inbound_messages.c.source_addr == source)
        ).scalar())
        if mo_id is not None:
            if acked is None:
                acked = time.perf_counter() - t0
            reply = await gw.store.read(lambda c, m=mo_id: c.execute(
                sa.select(outbound_messages.c.status, outbound_messages.c.parts).where(
                    outbound_messages.c.in_reply_to == m)).first())
            if reply is not None and reply.status in ("submitted", "delivered", "failed"):
                return acked, time.perf_counter() - t0, int(reply.parts)
        await asyncio.sleep(0.005)


async def _reply_wait(gw: Gateway) -> float:
    t0 = time.perf_counter()
    mt_id = await gw.enqueue("8613700000001", "ORD 1001*5 OK. Order 42 received.", priority=1)
    assert gw.store is not None
    while True:
        msg = await gw.store.read(lambda c: outbound.get_message(c, mt_id))
        if msg and msg["status"] in ("submitted", "delivered", "failed"):
            return time.perf_counter() - t0
        await asyncio.sleep(0.005)


async def run(args: argparse.Namespace) -> int:
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/bench.db"
    sim: SimProcess | None = None
    try:
        sim_port = None
        if args.sim_process:
            sim = SimProcess()
            sim_port = await sim.start()
        where = "separate process" if sim else "same process"
        print(f"database {db_kind(url)}, simulator in {where}, throttle off, "
              f"window {args.window}, claim batch {args.batch}, {args.binds} bind(s)",
              flush=True)
        print(f"[1] enqueue {args.count:,} recipients (chunks of {args.chunk}) …", flush=True)
        enq = await enqueue_phase(url, args.count, args.chunk)
        print("[2] dispatch to the simulator, priority-1 replies during the drain …",
              flush=True)
        res = await dispatch_phase(url, args.count, sim=sim, sim_port=sim_port,
                                   window=args.window, batch=args.batch,
                                   sample=args.sample, timeout=args.timeout,
                                   binds=args.binds, workdir=tmp.name)
    finally:
        if sim is not None:
            await sim.stop()
        tmp.cleanup()
    n, total = args.count, res["expected_msgs"]
    rss = [s["rss_mb"] for s in res["samples"]]
    print()
    print(f"enqueue rate:   {enq:>9,.0f} msgs/s  ({n:,} recipients)")
    print(f"dispatch rate:  {res['rate']:>9,.0f} msgs/s  ({n:,} in "
          f"{res['elapsed']:.1f}s incl. start; throttled responses: {res['throttled']})")
    for at, wait in res["waits"]:
        print(f"reply wait at {at:>4.0%} of the drain: {wait * 1000:>7.1f} ms")
    for at, acked, answered in res["probes"]:
        print(f"an MO at {at:>4.0%} of the drain: acknowledged in {acked * 1000:>7.1f} ms, "
              f"answered (reply submitted) in {answered * 1000:>7.1f} ms")
    print(f"receipts matched: {res['receipts_matched']:,}/{total:,} "
          f"({res['receipts_matched'] / res['receipts_elapsed']:,.0f} msgs/s incl. start)")
    if rss:
        print(f"gateway RSS during the drain: max {max(rss):.1f} MB, last {rss[-1]:.1f} MB "
              f"({len(rss)} samples{'' if sim else ', simulator included'})")
    sim_ms = res["sim_cpu_s"] / n * 1000 if res["sim_cpu_s"] is not None else None
    print(f"CPU per message: gateway{'' if sim else ' + simulator'} "
          f"{res['cpu_s'] / n * 1000:.2f} ms"
          + (f", simulator {sim_ms:.2f} ms" if sim_ms is not None else ""))
    both_ms = res["cpu_s"] / n * 1000 + (sim_ms or 0.0)
    print(cpu_budget_line(both_ms, res["busy_cores"], res["cores"], "message"))
    lines = log_lines(args.log_path)
    print(f"gateway log: {lines:,} lines at {args.log_level} ({lines / max(n, 1):.1f} a message)")
    parts = res["expected_parts"]
    ok = res["submitted"] == parts and res["receipts_matched"] == total
    print(f"check: OK — {total} messages ({parts} parts) submitted once, {total} receipts "
          "matched" if ok else
          f"check: FAILED — submitted {res['submitted']}/{parts} parts, receipts matched "
          f"{res['receipts_matched']}/{total}, statuses {res['statuses']}")
    write_json(args.json, {
        "benchmark": "outbound", "db": db_kind(url), "count": n, "window": args.window,
        "binds": args.binds,
        "batch": args.batch, "sim_process": bool(sim), "enqueue_per_s": enq,
        "dispatch_per_s": res["rate"], "throttled": res["throttled"],
        "reply_waits_ms": {f"{at:.0%}": w * 1000 for at, w in res["waits"]},
        "reply_wait_max_ms": max((w for _, w in res["waits"]), default=0.0) * 1000,
        "mo_ack_max_ms": max((a for _, a, _ in res["probes"]), default=0.0) * 1000,
        "mo_answer_max_ms": max((b for _, _, b in res["probes"]), default=0.0) * 1000,
        "submitted": res["submitted"], "receipts_matched": res["receipts_matched"],
        "rss_mb_max": max(rss, default=0.0), "cpu_ms_per_msg": res["cpu_s"] / n * 1000,
        "cpu_ms_per_msg_sim": sim_ms, "busy_cores": res["busy_cores"],
        "cpu_ceiling_per_s": cpu_ceiling(both_ms, res["cores"]),
        "log_level": args.log_level, "log_lines": lines,
        "ok": ok, "machine": machine()})
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20_000,
                    help="broadcast size (default 20000; 1000000 for the target)")
    ap.add_argument("--chunk", type=int, default=1000, help="rows per enqueue transaction")
    ap.add_argument("--window", type=int, default=50,
                    help="our submit window per bind (the SMSC's own window, 10 deliver_sm "
                         "in flight, bounds the receipts a bind takes at once)")
    ap.add_argument("--binds", type=int, default=1,
                    help="transceiver binds to the SMSC (several: a connections file of equal "
                         "binds; needs --sim-process)")
    ap.add_argument("--batch", type=int, default=50, help="claim batch (SMSGW_CLAIM_BATCH)")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--sim-process", action="store_true",
                    help="run the simulator as a separate process")
    ap.add_argument("--sample", type=float, default=5.0,
                    help="seconds between RSS / queue-depth samples (default 5)")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="give up waiting for receipts after this many idle seconds")
    ap.add_argument("--json", metavar="FILE", help="write a one-line JSON summary")
    ap.add_argument("--short", action="store_true", help="a tiny run (300 recipients)")
    add_log_flags(ap)
    args = ap.parse_args()
    if args.binds < 1 or (args.binds > 1 and not args.sim_process):
        ap.error("--binds must be at least 1, and more than 1 needs --sim-process")
    if args.short:
        args.count, args.chunk, args.sample = 300, 100, 1.0
        args.timeout = min(args.timeout, 20.0)
    args.log_path = start_logging(args)
    sys.exit(eventloop.run(run(args)))  # uvloop when installed, as `smsgw up`


if __name__ == "__main__":
    main()
