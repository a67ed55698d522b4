"""The handsets' side of a benchmark: inject MOs at a paced rate into the SMSC simulator and
time each reply as it lands in the handset's inbox.

Used in the gateway's process (`SimDriver(gw.simulator)`), or as its own process with
`--sim-process` (`_bench.SimProcess` runs this file): it starts a simulator on a free port,
prints {"port": N}, then answers one JSON command a line on stdin ("run", "stats", and for
the chaos benchmark "inject", "inbox") with one JSON line on stdout, and stops its simulator
when stdin closes.

Latency is from the moment an MO was *due* (open loop: the pacing schedule, so a stalled
injector does not hide a stalled gateway) to the reply landing in the handset's inbox.
Replies are matched to MOs first in, first out per handset.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections import Counter, defaultdict, deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import cpu_seconds, percentiles  # first: puts the repo on sys.path
from mix import Mix

from gateway import eventloop
from simulator.smsc import Simulator


def _reply_code(text: str) -> str:
    return text[4:7] if text.startswith("ERR E") else "OK"


class SimDriver:
    def __init__(self, sim: Simulator, dest: str = "10690", *, record: bool = False) -> None:
        self.sim = sim
        self.dest = dest
        # Every message that landed, (msisdn, text), for reconciliation (benchmarks/chaos.py);
        # off by default so a long soak's memory stays flat.
        self.received: list[tuple[str, str]] | None = [] if record else None
        self._waiting: dict[str, deque[tuple[float, str]]] = defaultdict(deque)
        self._latency: list[float] = []
        self._latency_by_kind: dict[str, list[float]] = defaultdict(list)
        self._codes: Counter[str] = Counter()
        self._replies = 0
        self._extra = 0
        self._last_reply = 0.0
        sim.handsets.add_listener(self._on_inbox)

    def _on_inbox(self, handset: Any) -> None:
        now = time.perf_counter()
        for msg in handset.inbox:
            if self.received is not None:
                self.received.append((handset.msisdn, msg.text))
            self._replies += 1
            self._last_reply = now
            self._codes[_reply_code(msg.text)] += 1
            queue = self._waiting.get(handset.msisdn)
            if not queue:
                self._extra += 1  # a reply nobody is waiting for: a double
                continue
            due, kind = queue.popleft()
            self._latency.append(now - due)
            self._latency_by_kind[kind].append(now - due)
        handset.inbox.clear()  # keeps a long soak's memory flat

    async def run(self, *, mode: str, count: int, rate: float, pin_share: float = 0.1,
                  accounts: int = 200, seed: int = 1, settle: float = 1.0,
                  timeout: float = 120.0, progress: bool = False) -> dict[str, Any]:
        """Inject `count` MOs of `mode` at `rate`/s (0 = all at once); wait for every reply
        (giving up after `timeout` s without progress), then `settle` s more for doubles."""
        mix = Mix(mode, seed=seed, pin_share=pin_share, accounts=accounts)
        kinds: Counter[str] = Counter()
        cpu0 = cpu_seconds()
        start = time.perf_counter()
        step = max(1, count // 10)
        for i, mo in enumerate(mix.stream(count, rate)):
            if rate:
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                due = time.perf_counter()
            self._waiting[mo.phone].append((due, mo.kind))
            kinds[mo.kind] += 1
            await self.sim.inject_mo(mo.phone, self.dest, mo.text)
            if progress and rate and (i + 1) % step == 0:
                print(f"  injected {i + 1}/{count}, replies {self._replies}", flush=True,
                      file=sys.stderr)
        injected = time.perf_counter()
        last_seen, idle_since = -1, time.perf_counter()
        while self._replies < count:
            if self._replies != last_seen:
                last_seen, idle_since = self._replies, time.perf_counter()
            elif time.perf_counter() - idle_since > timeout:
                break
            await asyncio.sleep(0.02)
        end = self._last_reply or time.perf_counter()
        await asyncio.sleep(settle)
        missing = sum(len(q) for q in self._waiting.values())
        stats = self.sim.stats()
        return {
            "mode": mode, "count": count, "rate": rate, "pin_share": pin_share,
            "kinds": dict(kinds), "inject_s": injected - start, "elapsed_s": end - start,
            "replies": self._replies, "missing": missing, "extra": self._extra,
            "latency": percentiles(self._latency),
            "latency_by_kind": {k: percentiles(v) for k, v in self._latency_by_kind.items()},
            "reply_codes": dict(self._codes), "expect_db": mix.stats.summary(),
            "cpu_s": cpu_seconds() - cpu0,
            "sim": {"mo_parts": stats["mo"]["injected"], "mo_acked": stats["mo"]["delivered"],
                    "mo_retries": stats["mo"]["retries"],
                    "submits_accepted": stats["submits"]["accepted"],
                    "receipts_sent": stats["receipts"]["sent"],
                    "receipts_pending": stats["receipts"]["pending"]},
        }


    async def inject(self, mos: list[tuple[str, str]]) -> dict[str, Any]:
        """Queue MOs (phone, text) without waiting for their replies: the MO ids per MO."""
        return {"ids": [await self.sim.inject_mo(phone, self.dest, text)
                        for phone, text in mos]}

    def inbox(self) -> dict[str, Any]:
        """What landed so far (needs record=True) and the MOs' acknowledgement counts."""
        mo = self.sim.stats()["mo"]
        return {"received": self.received or [], "mo_injected": mo["injected"],
                "mo_acked": mo["delivered"], "mo_pending": mo["pending"]}


async def _serve(receipt_delay: float, record: bool) -> None:
    from simulator.config import SimulatorConfig

    sim = Simulator(SimulatorConfig(host="127.0.0.1", port=0, control_port=None,
                                    receipt_delay=receipt_delay))
    await sim.start()
    driver = SimDriver(sim, record=record)
    print(json.dumps({"port": sim.port}), flush=True)
    try:
        while line := await asyncio.to_thread(sys.stdin.readline):
            req = json.loads(line)
            cmd = req.pop("cmd")
            if cmd == "run":
                out = await driver.run(**req)
            elif cmd == "inject":
                out = await driver.inject([(m[0], m[1]) for m in req["mos"]])
            elif cmd == "inbox":
                out = driver.inbox()
            elif cmd == "stats":
                out = {"sim": sim.stats(), "cpu_s": cpu_seconds()}
            else:
                out = {"error": f"unknown command {cmd!r}"}
            print(json.dumps(out), flush=True)
    finally:
        await sim.stop()


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--receipt-delay", type=float, default=0.0)
    ap.add_argument("--record", action="store_true",
                    help="keep every inbox message for the 'inbox' command")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    eventloop.run(_serve(args.receipt_delay, args.record))


if __name__ == "__main__":
    main()
