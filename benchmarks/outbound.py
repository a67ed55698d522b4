"""Outbound benchmark: broadcast enqueue rate, dispatch rate, and a reply's wait meanwhile.

1. Enqueue: N recipients queued broadcast-style (bulk, priority 3) through the store's
   group-commit writer, `outbound.enqueue_many` in chunks of --chunk rows (one transaction
   each, fsync on commit) - nothing is dispatching yet.
2. Dispatch: the real `Gateway` starts against the simulator (throttle off, receipts on)
   and drains the queue; messages/s = N / time until every message has its submit_sm_resp
   recorded.
3. While it drains, a priority-1 reply is queued at 10 %, 30 %, 50 %, 70 % and 90 % of the
   drain; its wait is the time from enqueue (committed) to its submit_sm_resp being recorded.

By default the simulator runs in this process (sharing the event loop and CPU with the
gateway: a floor). --sim-process runs `python -m simulator --port N --no-control` as a
separate process, closer to a real SMSC.

    python benchmarks/outbound.py                     # 20,000 recipients, in-process SMSC
    python benchmarks/outbound.py --count 100000 --sim-process
    python benchmarks/outbound.py --database-url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.app import Gateway
from gateway.config import Settings
from store import outbound
from store.store import Store

REPLY_AT = (0.1, 0.3, 0.5, 0.7, 0.9)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


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


async def dispatch_phase(url: str, count: int, *, sim_port: int | None, window: int,
                         batch: int) -> dict[str, Any]:
    overrides: dict[str, Any] = dict(
        database_url=url, api_port=0, sim_port=0, sim_control_port=0, smpp_server_port=None,
        window=window, claim_batch=batch, poll_interval=0.05, sim_receipt_delay=0.0,
        instance="bench-outbound")
    if sim_port is not None:
        overrides.update(smsc_host="127.0.0.1", smsc_port=sim_port)
    gw = Gateway(Settings(**overrides))
    start = time.perf_counter()
    await gw.start(api=False)
    try:
        await gw.client.wait_bound()
        waits: list[tuple[float, float]] = []
        marks = list(REPLY_AT)
        step = max(1, count // 10)
        next_report = step
        while True:
            sent = await _submitted_ids(gw)
            if marks and sent >= marks[0] * count:
                at = marks.pop(0)
                waits.append((at, await _reply_wait(gw)))
                continue
            if sent >= next_report:
                el = time.perf_counter() - start
                print(f"  submitted {sent:>7}/{count}  {sent / el:>9,.0f} msgs/s", flush=True)
                next_report += step
            if sent >= count + len(REPLY_AT) - len(marks):
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - start
        sender = next(iter(gw.dispatcher.senders.values()))
        return {"elapsed": elapsed, "rate": count / elapsed, "waits": waits,
                "throttled": sender.throttled}
    finally:
        await gw.stop()


async def _reply_wait(gw: Gateway) -> float:
    t0 = time.perf_counter()
    mt_id = await gw.enqueue("8613700000001", "ORD 1001*5 OK. Order 42 received.", priority=1)
    assert gw.store is not None
    while True:
        msg = await gw.store.read(lambda c: outbound.get_message(c, mt_id))
        if msg and msg["status"] in ("submitted", "delivered", "failed"):
            return time.perf_counter() - t0
        await asyncio.sleep(0.005)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20_000, help="broadcast size (default 20000)")
    ap.add_argument("--chunk", type=int, default=1000, help="rows per enqueue transaction")
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--batch", type=int, default=50, help="claim batch (SMSGW_CLAIM_BATCH)")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--sim-process", action="store_true",
                    help="run the simulator as a separate process")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/bench.db"
    proc = None
    sim_port = None
    try:
        if args.sim_process:
            sim_port = _free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "simulator", "--port", str(sim_port), "--no-control",
                 "--receipt-delay", "0", "--log-level", "WARNING"],
                cwd=str(Path(__file__).resolve().parent.parent), env=os.environ.copy())
            await _wait_port(sim_port)
        where = "separate process" if proc else "same process"
        print(f"database {url.split(':', 1)[0]}, simulator in {where}, throttle off, "
              f"window {args.window}, claim batch {args.batch}", flush=True)
        print(f"[1] enqueue {args.count:,} recipients (chunks of {args.chunk}) …", flush=True)
        enq = await enqueue_phase(url, args.count, args.chunk)
        print("[2] dispatch to the simulator, priority-1 replies during the drain …",
              flush=True)
        res = await dispatch_phase(url, args.count, sim_port=sim_port, window=args.window,
                                   batch=args.batch)
        print()
        print(f"enqueue rate:   {enq:>9,.0f} msgs/s  ({args.count:,} recipients)")
        print(f"dispatch rate:  {res['rate']:>9,.0f} msgs/s  ({args.count:,} in "
              f"{res['elapsed']:.1f}s incl. start; throttled responses: {res['throttled']})")
        for at, wait in res["waits"]:
            print(f"reply wait at {at:>4.0%} of the drain: {wait * 1000:>7.1f} ms")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        tmp.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
