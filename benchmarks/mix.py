"""The MO traffic of the end-to-end benchmarks.

`help` mode: "HELP" from a new handset each time (the original e2e figure).
`mix` mode, what a distributor's gateway sees in a day, from registered retailers and from
anyone:

    ORD <PIN> with 1-20 lines (a third in Chinese)   --pin-share (default 10 %)
    SAL <date> with 1-20 lines                        30 % of the rest
    BAL (several spellings)                           20 %
    HELP / HELP ORD / 帮助 / ?                         20 %
    garbage ("hello 123", "test …")                   20 %
    long free text (2-3 concatenated parts)            10 %

Long orders and sales reports (many lines, or Chinese at 70 characters a part) arrive as
concatenated messages too. Every MO deserves exactly one reply. A handset never sends the
same text twice within the gateway's redelivery window (an identical PDU inside it is, by
design, a redelivery and answered once).

The retailers live in `seed()`: the same phones, PIN and products on both sides.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

PIN = "135790"
PRODUCT_CODES = [str(5001 + i) for i in range(20)]
REUSE_AFTER = 150.0  # seconds: over two redelivery windows (60 s buckets) of the gateway
LONG_TEXT = ("hello, this is the shop on the corner of Renmin Road. The delivery yesterday "
             "was short by two cartons and one case of water, and the driver said to send a "
             "message here. Please tell me who to call about it, and when the next truck "
             "comes. Thanks, ")

BAL_SPELLINGS = ["BAL", "bal", "Bal", "余额", "YE", "ye", "BAL.", "余额。", "bal!", "Ye"]
HELP_TEXTS = ["HELP", "HELP ORD", "帮助", "?", "help sal", "帮助订货"]
GARBAGE = ["hello {n}", "test {n}", "where is my delivery {n}", "hi {n} ok", "thanks {n}"]


def retailer_phone(i: int) -> str:
    return f"8613600{i:06d}"


@dataclass
class Mo:
    phone: str
    text: str
    kind: str


@dataclass
class MixStats:
    """What the gateway's database must hold afterwards."""

    orders: int = 0
    sales: set[tuple[str, str]] = field(default_factory=set)  # (phone, date) pairs

    def summary(self) -> dict[str, int]:
        return {"orders": self.orders, "sales_reports": len(self.sales)}


class Mix:
    def __init__(self, mode: str, *, seed: int = 1, pin_share: float = 0.10,
                 accounts: int = 200, today: date | None = None) -> None:
        self.mode = mode
        self.rng = random.Random(seed)
        self.pin_share = pin_share
        self.accounts = max(1, accounts)
        self.today = today or datetime.now().date()
        self.stats = MixStats()
        self._anon = itertools.count(1)
        self._serial = itertools.count(1)
        self._recent: dict[tuple[str, str], float] = {}
        self._recent_order: deque[tuple[float, tuple[str, str]]] = deque()
        rest = 1.0 - pin_share
        self._kinds = ["ORD", "SAL", "BAL", "HELP", "garbage", "long"]
        self._weights = [pin_share, rest * 0.3, rest * 0.2, rest * 0.2, rest * 0.2,
                         rest * 0.1]

    def stream(self, count: int, rate: float) -> Iterator[Mo]:
        """`count` MOs; `rate` (per second, 0 = as fast as possible) only spaces the reuse of
        a (handset, text) pair."""
        for i in range(count):
            yield self.next(i / rate if rate else 0.0)

    def next(self, at: float) -> Mo:
        if self.mode == "help":
            return Mo(f"86139{next(self._anon):08d}", "HELP", "HELP")
        self._forget(at)
        kind = self.rng.choices(self._kinds, self._weights)[0]
        for _ in range(20):
            mo = self._make(kind)
            key = (mo.phone, mo.text)
            if key not in self._recent:
                self._recent[key] = at
                self._recent_order.append((at, key))
                self._count(mo)
                return mo
        # Every retailer sent this very text recently (tiny --accounts): a fresh handset asks
        # for HELP instead.
        return Mo(self._anon_phone(), "HELP", "HELP")

    def _forget(self, at: float) -> None:
        while self._recent_order and at - self._recent_order[0][0] > REUSE_AFTER:
            _, key = self._recent_order.popleft()
            self._recent.pop(key, None)

    def _retailer(self) -> str:
        return retailer_phone(self.rng.randrange(self.accounts))

    def _anon_phone(self) -> str:
        return f"86150{next(self._anon):08d}"

    def _lines(self) -> str:
        n = self.rng.randint(1, 20)
        codes = self.rng.sample(PRODUCT_CODES, n)
        return " ".join(f"{c}*{self.rng.randint(1, 50)}" for c in codes)

    def _make(self, kind: str) -> Mo:
        r = self.rng
        if kind == "ORD":
            word = "订货" if r.random() < 1 / 3 else "ORD "
            return Mo(self._retailer(), f"{word}{PIN} {self._lines()}", kind)
        if kind == "SAL":
            day = self.today - timedelta(days=r.randint(1, 6))
            return Mo(self._retailer(), f"SAL {day:%Y%m%d} {self._lines()}", kind)
        if kind == "BAL":
            return Mo(self._retailer(), r.choice(BAL_SPELLINGS), kind)
        if kind == "HELP":
            return Mo(self._anon_phone(), r.choice(HELP_TEXTS), kind)
        if kind == "garbage":
            return Mo(self._anon_phone(), r.choice(GARBAGE).format(n=next(self._serial)), kind)
        return Mo(self._anon_phone(), LONG_TEXT * r.randint(1, 2) + str(next(self._serial)),
                  kind)

    def _count(self, mo: Mo) -> None:
        if mo.kind == "ORD":
            self.stats.orders += 1
        elif mo.kind == "SAL":
            self.stats.sales.add((mo.phone, mo.text.split()[1]))


def seed(conn: Any, *, accounts: int, now: datetime) -> None:
    """Products 5001-5020 and `accounts` retailers (phones `retailer_phone(i)`, PIN `PIN`)
    that may order any day, any hour, with money to spare. One PIN hash for all: hashing is
    deliberately slow, and the gateway checks each PIN against the hash all the same."""
    import sqlalchemy as sa

    from commands.pins import hash_pin
    from store.models import accounts as accounts_t
    from store.models import products

    have = set(conn.execute(sa.select(products.c.code)).scalars())
    conn.execute(products.insert(), [
        {"code": c, "name_zh": f"测试商品{c}", "name_en": f"Bench item {c}", "price_cents": 1000,
         "cost_cents": 800, "max_qty": 999, "stock_qty": 10_000_000, "active": True}
        for c in PRODUCT_CODES if c not in have])
    pin_hash = hash_pin(PIN)
    conn.execute(accounts_t.insert(), [
        {"account_no": f"B{i:06d}", "role": "retailer", "name": f"Bench shop {i}",
         "phone": retailer_phone(i), "pin_hash": pin_hash, "lang": "en", "region": "bench",
         "route": "BENCH", "sms_ordering": True, "order_days": "",
         "balance_cents": 10**12, "credit_cents": 0, "created_at": now, "updated_at": now}
        for i in range(accounts)])


def db_counts(conn: Any) -> dict[str, int]:
    """Orders and sales reports of the bench retailers (compare with MixStats.summary)."""
    import sqlalchemy as sa

    from store.models import accounts as accounts_t
    from store.models import orders, sales_reports

    bench = sa.select(accounts_t.c.id).where(accounts_t.c.route == "BENCH")
    n_orders = conn.execute(sa.select(sa.func.count()).select_from(orders).where(
        orders.c.account_id.in_(bench))).scalar_one()
    n_sales = conn.execute(sa.select(sa.func.count()).select_from(sales_reports).where(
        sales_reports.c.account_id.in_(bench))).scalar_one()
    return {"orders": int(n_orders), "sales_reports": int(n_sales)}
