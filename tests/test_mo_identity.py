"""Redelivery or repeat: the ack rule (gateway/mo_acks.py) and its end-to-end property.

The property test drives the real InboundHandler, MoProcessor and store (SQLite, the demo
data) with sessions whose fate the test decides, and a fake clock: a full SMPP round trip
per step would make a few hundred interleavings take minutes. The SMPP path itself is
covered in tests/test_e2e_never_silent.py and tests/test_e2e_commands.py.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.demo import load_demo_data
from commands.guards import SenderGuards
from commands.rules import RuleCache
from gateway.inbound import InboundHandler
from gateway.mo_acks import AckTracker
from gateway.mo_processor import MoProcessor
from gateway.smpp.codec import Pdu
from store.models import inbound_messages, orders, outbound_messages, serial_events
from store.store import Store

PEER_TIMEOUT = 30.0
RETAILER = "8613800000001"  # R1001, PIN 123456


class FakeSession:
    """What the tracker needs of an SmppConnection: an id, a name, a `closed` future."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self._ids)
        self.name = "fake"
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def drop(self) -> None:
        if not self.closed.done():
            self.closed.set_result("dropped")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the tracker on its own ---------------------------------------------------------------------


async def test_ack_confirmed_only_when_the_session_outlives_the_peer_timeout() -> None:
    clock = Clock()
    acks = AckTracker(None, peer_timeout=PEER_TIMEOUT, clock=clock)  # type: ignore[arg-type]
    up, dropped, late = FakeSession(), FakeSession(), FakeSession()
    acks.acked(1, up, arrived=clock.now)
    acks.acked(2, dropped, arrived=clock.now)
    acks.acked(3, late, arrived=clock.now - PEER_TIMEOUT - 1)  # our ack left too late
    clock.now += 5
    dropped.drop()  # within the timeout: the ack may never have arrived
    await asyncio.sleep(0)  # let the done-callback record the drop
    assert acks.due() == []  # nothing is due before the timeout
    clock.now += PEER_TIMEOUT
    up.drop()  # after the timeout: too late to matter
    await asyncio.sleep(0)
    assert acks.due() == [1]
    assert acks.due() == []  # each ack is decided once


def test_session_keys_are_distinct_per_session() -> None:
    acks = AckTracker(None, peer_timeout=1, instance="gw-a")  # type: ignore[arg-type]

    @dataclass
    class S:
        id: int
        name: str = "smsc1"

    assert acks.session_key(S(1)) != acks.session_key(S(2))
    assert acks.session_key(S(1)).startswith("gw-a/smsc1#1/")


# -- the property: interleavings of redeliveries and genuine repeats ---------------------------

# A person sends one of these texts; each example makes them unique (see `texts_for`).
KINDS = ("ORD", "SN", "BAL")
Action = tuple[str, int, bool]  # ("send" | "redeliver", kind index, ack reaches the SMSC)

actions = st.lists(
    st.tuples(st.sampled_from(["send", "redeliver"]), st.integers(0, len(KINDS) - 1),
              st.booleans()),
    min_size=1, max_size=8)


@dataclass
class Copy:
    """One deliver_sm as the SMSC sent it, and the row the gateway made of it."""

    kind: int
    row: int
    genuine: bool
    redelivers: Copy | None = None


@dataclass
class World:
    store: Store
    example: itertools.count = field(default_factory=lambda: itertools.count(1))


def texts_for(n: int) -> tuple[str, ...]:
    code = 1001 + n % 8
    return (f"ORD 123456 {code}*{1 + n // 8 % 20}", f"SN PROP{n:06d}", "BAL")


def pdu(text: str) -> Pdu:
    return Pdu("deliver_sm", 1, 0, {
        "source_addr": RETAILER, "source_addr_ton": 1, "destination_addr": "10690",
        "esm_class": 0, "data_coding": 0, "short_message": text.encode()})


async def run_example(world: World, steps: list[Action]) -> None:
    store = world.store
    texts = texts_for(next(world.example))
    start = await store.read(lambda c: c.execute(
        sa.select(sa.func.coalesce(sa.func.max(inbound_messages.c.id), 0))).scalar_one())
    # Earlier examples are settled history (even one that failed half-way).
    await store.write(lambda c: c.execute(sa.update(inbound_messages).values(
        ack_confirmed=True)))
    orders_before = await store.read(lambda c: c.execute(
        sa.select(sa.func.count()).select_from(orders)).scalar_one())
    clock = Clock()
    acks = AckTracker(store, peer_timeout=PEER_TIMEOUT, clock=clock)
    processor = MoProcessor(store, source_addr="10690", rules=RuleCache(),
                            guards=SenderGuards(100_000, 60))
    handler = InboundHandler(store, processor, acks=acks)
    owed: dict[int, Copy] = {}  # kind -> the copy whose ack was lost (the SMSC redelivers it)
    copies: list[Copy] = []
    genuine = [0] * len(KINDS)

    async def deliver(kind: int, arrives: bool, redelivers: Copy | None) -> None:
        session = FakeSession()
        await handler.on_deliver_sm("smsc1", pdu(texts[kind]), session)
        row = await store.read(lambda c: c.execute(
            sa.select(sa.func.max(inbound_messages.c.id))).scalar_one())
        copy = Copy(kind, row, redelivers is None, redelivers)
        copies.append(copy)
        if arrives:
            clock.now += PEER_TIMEOUT + 1  # the session stays up past the SMSC's timeout
            await acks.confirm_due()
            owed.pop(kind, None)
        else:
            session.drop()  # or the gateway crashed: the ack may be lost
            owed[kind] = redelivers or copy
            await asyncio.sleep(0)

    for action, kind, arrives in steps:
        if kind in owed:  # the SMSC delivers in order: an owed redelivery comes first
            await deliver(kind, arrives, owed[kind])
        elif action == "send":
            genuine[kind] += 1
            await deliver(kind, arrives, None)
    for kind, copy in list(owed.items()):  # the SMSC redelivers until it has our ack
        await deliver(kind, True, copy)
    await processor.drain()

    def facts(c: Any) -> tuple[list[Any], dict[int, int], int, int]:
        rows = c.execute(sa.select(inbound_messages).where(inbound_messages.c.id > start)
                         .order_by(inbound_messages.c.id)).all()
        replies = dict(c.execute(
            sa.select(outbound_messages.c.in_reply_to, sa.func.count())
            .where(outbound_messages.c.in_reply_to > start)
            .group_by(outbound_messages.c.in_reply_to)).all())
        n_orders = c.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()
        n_serials = c.execute(sa.select(sa.func.count()).select_from(serial_events).where(
            serial_events.c.serial == texts[1].split()[1])).scalar_one()
        return rows, replies, n_orders, n_serials

    rows, replies, n_orders, n_serials = await store.read(facts)
    by_id = {r.id: r for r in rows}
    # Never doubled: one effect per message the person sent, none per redelivery.
    assert n_orders - orders_before == genuine[0], (steps, rows)
    assert n_serials == genuine[1], (steps, rows)
    for copy in copies:
        row = by_id[copy.row]
        if copy.redelivers is not None:
            original = by_id[copy.redelivers.row]
            assert row.duplicate_of == (original.duplicate_of or original.id), (steps, rows)
        elif copy.genuine:
            assert row.duplicate_of is None, (steps, rows)
    # Never silent: every MO is settled and answered.
    for row in rows:
        assert row.status == "processed", row
        assert row.disposition in ("answered", "replayed_duplicate"), row
        assert replies.get(row.id, 0) >= 1, (steps, row)


def test_redeliveries_and_repeats_never_double_and_never_silence(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'prop.db'}")
    store.run(lambda c: load_demo_data(c, now=datetime.now(UTC)))
    # Funds for every order the examples place (no E10: replies stay distinct answers).
    store.run(lambda c: c.exec_driver_sql(
        "UPDATE accounts SET balance_cents = 1000000000 WHERE phone = '8613800000001'"))
    world = World(store)

    @settings(max_examples=30, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(steps=actions)
    def check(steps: list[Action]) -> None:
        asyncio.run(run_example(world, steps))

    try:
        check()
    finally:
        asyncio.run(store.close())
