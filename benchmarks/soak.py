"""Soak: the realistic MO mix at a steady rate for a long time; does the gateway stay flat?

Runs the gateway with the simulator and the handsets in a separate process (so the RSS is
the gateway's alone), sends the `e2e.py --mix` traffic open loop at `--rate` MO/s for
`--duration` seconds, and every `--sample` seconds records the gateway's RSS, its CPU, and
what is waiting in it: MTs queued and being sent, MOs not yet processed, receipts not yet
matched. At the end: the table, each series' least-squares slope over the run after the
first 10 % (warm-up), whether it stayed flat, and the e2e check (nothing lost or doubled).

Flat means: RSS drifts less than max(5 MB, 5 %) over the run, each queue less than
max(10, one second of traffic), and the gateway's CPU (at a constant rate: its cost per
message) less than max(10 points, 25 %) — a cost that grows with the database, e.g. a
statement scanning a table, shows there first. The exit code is the e2e check's (1 on loss
or doubles).

    python benchmarks/soak.py                         # 30 minutes at 100 MO/s
    python benchmarks/soak.py --rate 250 --duration 600 --sample 5
    python benchmarks/soak.py --short --json /tmp/soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import (  # first: puts the repo on sys.path
    add_log_flags,
    cpu_seconds,
    db_kind,
    fmt_latency,
    log_lines,
    queue_sample,
    rss_mb,
    slope,
    start_logging,
    write_json,
)
from e2e import Harness, check, machine

from gateway import eventloop

SERIES = ("queued", "sending", "mo_unprocessed", "receipts_unmatched")


async def run(args: argparse.Namespace) -> int:
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/soak.db"
    count = int(args.rate * args.duration)
    h = Harness(url, sim_process=True, window=args.window, accounts=args.accounts,
                seed_accounts=True)
    print(f"soak: {count:,} MOs (mix, {args.pin_share:.0%} with a PIN) at {args.rate:g}/s for "
          f"{args.duration:g}s over {db_kind(url)}, sampling every {args.sample:g}s", flush=True)
    samples: list[dict[str, Any]] = []
    try:
        await h.start()
        assert h.gw.store is not None
        t0 = time.perf_counter()
        cpu_prev, t_prev = cpu_seconds(), t0
        driving = asyncio.create_task(h.drive(
            mode="mix", count=count, rate=args.rate, pin_share=args.pin_share,
            accounts=args.accounts, seed=args.seed, settle=args.settle, timeout=args.timeout))
        print(f"{'t (s)':>7} {'RSS MB':>8} {'CPU %':>6} {'queued':>8} {'sending':>8} "
              f"{'MO wait':>8} {'rcpt wait':>9}", flush=True)
        while True:
            done, _ = await asyncio.wait({driving}, timeout=args.sample)
            now, cpu = time.perf_counter(), cpu_seconds()
            q = await h.gw.store.read(queue_sample)
            row = {"t": now - t0, "rss_mb": rss_mb(),
                   "cpu_pct": (cpu - cpu_prev) / (now - t_prev) * 100, **q}
            cpu_prev, t_prev = cpu, now
            samples.append(row)
            print(f"{row['t']:>7.0f} {row['rss_mb']:>8.1f} {row['cpu_pct']:>6.0f} "
                  f"{q['queued']:>8} {q['sending']:>8} {q['mo_unprocessed']:>8} "
                  f"{q['receipts_unmatched']:>9}", flush=True)
            if done:
                break
        res = driving.result()
        db = await h.db_counts()
    finally:
        await h.stop()
        tmp.cleanup()
    # Only samples taken while traffic flowed, after the warm-up, count for the trend.
    steady = [s for s in samples if args.duration * 0.1 <= s["t"] <= args.duration]
    trends: dict[str, dict[str, Any]] = {}
    for key in ("rss_mb", "cpu_pct", *SERIES):
        pts = [(s["t"], float(s[key])) for s in steady]
        drift = slope(pts) * (pts[-1][0] - pts[0][0]) if len(pts) > 1 else 0.0
        mean = sum(y for _, y in pts) / len(pts) if pts else 0.0
        limit = (max(5.0, 0.05 * mean) if key == "rss_mb" else
                 max(10.0, 0.25 * mean) if key == "cpu_pct" else max(10.0, args.rate))
        trends[key] = {"slope_per_min": slope(pts) * 60, "drift": drift,
                       "flat": abs(drift) < limit}
    ok, verdict = check(res, db)
    print()
    for key, t in trends.items():
        unit = {"rss_mb": "MB", "cpu_pct": "points"}.get(key, "msgs")
        print(f"{key:<19} slope {t['slope_per_min']:>+9.2f} {unit}/min, drift over the run "
              f"{t['drift']:>+9.1f} {unit}: {'flat' if t['flat'] else 'NOT FLAT'}")
    flat = all(t["flat"] for t in trends.values())
    print(f"stayed flat: {'yes' if flat else 'NO'} ({len(steady)} samples after warm-up)")
    n = res["count"]
    mo_s = (res["replies"] - res["extra"]) / res["elapsed_s"] if res["elapsed_s"] else 0.0
    print(f"throughput {mo_s:,.0f} MO/s (target {args.rate:g}/s); MO→reply latency: "
          f"{fmt_latency(res['latency'])}")
    lines = log_lines(args.log_path)
    print(f"gateway log: {lines:,} lines at {args.log_level} ({lines / max(n, 1):.1f} a MO)")
    print(verdict)
    write_json(args.json, {
        "benchmark": "soak", "db": db_kind(url), "rate_target": args.rate,
        "duration_s": args.duration, "count": n, "mo_per_s": mo_s,
        "replies": res["replies"] - res["extra"], "missing": res["missing"],
        "extra": res["extra"], "latency": res["latency"], "samples": len(samples),
        "rss_mb_max": max(s["rss_mb"] for s in samples), "trends": trends, "flat": flat,
        "db_expected": res["expect_db"], "db_found": db, "ok": ok,
        "log_level": args.log_level, "log_lines": lines, "machine": machine()})
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=100.0, help="MO/s (default 100)")
    ap.add_argument("--duration", type=float, default=1800.0,
                    help="seconds of traffic (default 1800 = 30 min)")
    ap.add_argument("--sample", type=float, default=10.0,
                    help="seconds between samples (default 10)")
    ap.add_argument("--window", type=int, default=50, help="SMPP window (default 50)")
    ap.add_argument("--database-url", help="default: a temporary SQLite file")
    ap.add_argument("--pin-share", type=float, default=0.10,
                    help="share of PIN-bearing commands (default 0.10)")
    ap.add_argument("--accounts", type=int, default=2000,
                    help="registered retailers (default 2000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="give up after this many seconds without a new reply")
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--json", metavar="FILE", help="write a one-line JSON summary")
    ap.add_argument("--short", action="store_true",
                    help="a tiny soak (6 s at 20 MO/s, a sample a second)")
    add_log_flags(ap)
    args = ap.parse_args()
    if args.short:
        args.rate, args.duration, args.sample = 20.0, 6.0, 1.0
        args.accounts, args.settle, args.timeout = 20, 0.5, min(args.timeout, 30.0)
    args.log_path = start_logging(args)
    sys.exit(eventloop.run(run(args)))  # uvloop when installed, as `smsgw up`


if __name__ == "__main__":
    main()
