"""End-to-end throughput: MOs from virtual handsets → gateway → store → replies → handsets.

Starts the real gateway with the bundled simulator in one process (as `smsgw up` does), fires
N MOs ("HELP" from N distinct handsets) at a target rate, and reports MO/s until every reply is
in its handset's inbox, plus MO→reply latency percentiles. Everything shares one event loop
and two cores here, so treat the figures as a floor.

    python benchmarks/e2e.py --count 2000 --rate 500
    python benchmarks/e2e.py --database-url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.app import Gateway
from gateway.config import Settings


async def run(count: int, rate: float, database_url: str | None, window: int) -> None:
    tmp = tempfile.TemporaryDirectory()
    url = database_url or f"sqlite:///{tmp.name}/bench.db"
    gw = Gateway(Settings(database_url=url, sim_port=0, sim_control_port=0, api_port=0,
                          window=window, sim_receipt_delay=0.0, poll_interval=0.05,
                          instance="bench"))
    await gw.start(api=False)
    sim = gw.simulator
    await gw.client.wait_bound()
    phones = [f"86139{i:08d}" for i in range(count)]
    sent_at: dict[str, float] = {}
    start = time.perf_counter()
    interval = 1.0 / rate if rate else 0.0
    print(f"sending {count} MOs at {rate or 'max'}/s over {url.split(':', 1)[0]} …",
          flush=True)
    for i, phone in enumerate(phones):
        sent_at[phone] = time.perf_counter()
        await sim.inject_mo(phone, gw.settings.source_addr, "HELP")
        if interval:
            target = start + (i + 1) * interval
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        if (i + 1) % max(1, count // 10) == 0:
            print(f"  injected {i + 1}/{count}", flush=True)
    pending = set(phones)
    deadline = time.perf_counter() + 120
    while pending and time.perf_counter() < deadline:
        pending = {p for p in pending if not sim.handset(p).inbox}
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - start
    # Latency from each handset's MO to its reply arriving in the inbox (wall clock).
    lat = [sim.handset(p).inbox[0].received_at.timestamp() - _wall(sent_at[p])
           for p in phones if sim.handset(p).inbox]
    await gw.stop()
    tmp.cleanup()
    done = count - len(pending)
    print(f"replies received: {done}/{count} in {elapsed:.2f}s → {done / elapsed:,.0f} MO/s "
          f"end to end")
    if lat:
        lat.sort()
        q = statistics.quantiles(lat, n=100)
        print(f"MO→reply latency: p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, "
              f"p99 {q[98] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms")


_EPOCH_OFFSET = time.time() - time.perf_counter()


def _wall(perf: float) -> float:
    return perf + _EPOCH_OFFSET


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="MOs to send (default 2000)")
    parser.add_argument("--rate", type=float, default=0,
                        help="target MO/s (default 0 = as fast as possible)")
    parser.add_argument("--window", type=int, default=50, help="SMPP window (default 50)")
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args.count, args.rate, args.database_url, args.window))


if __name__ == "__main__":
    main()
