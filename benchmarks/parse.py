"""Parser throughput: commands parsed per second over a realistic mix, one core.

    python benchmarks/parse.py [--count 200000] [--seed 1]

The mix: orders with 1-20 lines (English, Chinese without separator, full-width, pair
syntax), MOD, SAL/STK with dates, queries, HELP, STOP/退订, and garbage. Target: >= 50,000/s.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commands.parse import parse
from commands.parsed import Parsed


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _items(rng: random.Random, n: int) -> str:
    codes = rng.sample(range(1000, 9999), n)
    sign = rng.choice(["*", "x", "*", " ", "×", "-"])
    return " ".join(f"{c}{sign}{rng.randint(1, 50)}" for c in codes)


def make_mix(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    makers = [
        (30, lambda: f"ORD 123456 {_items(rng, rng.randint(1, 20))}"),
        (10, lambda: f"订货123456 {_items(rng, rng.randint(1, 20))}".replace(" ", "，")),
        (5, lambda: _fullwidth(f"ORD 123456 {_items(rng, rng.randint(1, 8))}")),
        (5, lambda: f"MOD 123456 {rng.randint(1, 99999)} {_items(rng, rng.randint(1, 5))}"),
        (8, lambda: f"SAL {rng.choice(['0114 ', '20240113 ', ''])}"
                    f"{_items(rng, rng.randint(1, 10))}"),
        (4, lambda: f"库存{_items(rng, rng.randint(1, 10))}"),
        (8, lambda: rng.choice(["Q SALES", "q sales month", "查询销量本月", "Q STOCK 1001",
                                "Q ROUTE", "OQ", "CHD1024", "BAL", "余额"])),
        (5, lambda: rng.choice(["HELP", "HELP ORD", "帮助订货", "?", "STOP", "TD", "退订"])),
        (5, lambda: rng.choice(["SUB SALES 8-20", "UNSUB ALL", "CFM 4821", "RPT 123456",
                                "CAN 123456 1024", "SN 356938035643809 356938035643817"])),
        (20, lambda: rng.choice(["hello", "你好，请问怎么订货", "ORD 12345 1001*5",
                                 "ORD 123456 1001*5 10x1", "ok thanks!!", "SAL 0230 1001*1",
                                 "", "Q SALES week", "1001*5", "订货 1001 5 1002"])),
    ]
    weights = [w for w, _ in makers]
    return [rng.choices(makers, weights)[0][1]() for _ in range(count)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    opts = ap.parse_args()
    mix = make_mix(opts.count, opts.seed)
    today = date(2024, 1, 15)
    ok = 0
    step = max(1, len(mix) // 10)
    start = time.perf_counter()
    for i in range(0, len(mix), step):
        for text in mix[i:i + step]:
            if isinstance(parse(text, today=today), Parsed):
                ok += 1
        done = min(i + step, len(mix))
        rate = done / (time.perf_counter() - start)
        print(f"\r{done:>9,}/{len(mix):,} parsed, {rate:,.0f}/s", end="", file=sys.stderr,
              flush=True)
    elapsed = time.perf_counter() - start
    print(file=sys.stderr)
    print(f"{len(mix):,} messages in {elapsed:.2f}s: {len(mix) / elapsed:,.0f} parsed/s "
          f"({ok / len(mix):.0%} understood, avg {sum(map(len, mix)) / len(mix):.0f} chars)")


if __name__ == "__main__":
    main()
