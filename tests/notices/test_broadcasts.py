"""Broadcasts: exact recipients per target, opt-outs skipped, windows honoured, chunked
progress, scheduled start, cancel (with the unsent messages)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from gateway.notices.broadcasts import BroadcastRunner, run_broadcast
from store import Store, outbound
from store import notices as sn
from store.domain import accounts, topics
from store.models import group_members, groups, outbound_messages
from store.notices import NoticePolicy
from tests.notices.conftest import (
    NOW,
    PH_MGR,
    PH_R1,
    PH_R2,
    PH_R3,
    PH_S1,
    SHANGHAI,
    build_world,
    local,
)

POLICY = NoticePolicy(source_addr="10690", tz=SHANGHAI)


class Clock:
    def __init__(self, now):  # type: ignore[no-untyped-def]
        self.now = now

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


async def _messages(store: Store, bid: int) -> list:  # type: ignore[type-arg]
    om = outbound_messages
    return await store.read(lambda c: c.execute(
        sa.select(om).where(om.c.broadcast_id == bid).order_by(om.c.id)).all())


async def test_segment_reaches_exactly_the_right_recipients(store: Store) -> None:
    ids = await store.write(build_world)
    # R2 opted out (STOP); the segment is region north, retailers, value band A or B.
    await store.write(lambda c: topics.unsubscribe_all(c, PH_R2, now=NOW))
    await store.write(lambda c: accounts.update(c, ids["R1"], now=NOW,
                                                notify_window_start="09:00",
                                                notify_window_end="20:00"))
    clock = Clock(local(2025, 1, 6, 7))
    bid = await store.write(lambda c: sn.create_broadcast(
        c, name="promo", target_kind="segment",
        target={"region": "north", "role": "retailer", "value_band": ["A", "B"]},
        text="New stock arrived", now=clock()))
    status = await run_broadcast(store.write, bid, policy=POLICY, clock=clock)
    assert status == "done"
    msgs = await _messages(store, bid)
    # R4 (no phone), R3 (south), S1 (subscriber), managers are outside; R2 opted out.
    assert [m.dest_addr for m in msgs] == [PH_R1]
    assert msgs[0].priority == 3 and msgs[0].text == "New stock arrived"
    assert msgs[0].schedule_at == local(2025, 1, 6, 9)  # R1's window opens at 09:00
    b = await store.read(lambda c: sn.get_broadcast(c, bid))
    assert (b["status"], b["total"], b["queued"], b["skipped"]) == ("done", 2, 1, 1)
    assert b["messages"] == {"queued": 1}
    # Running it again does nothing.
    assert await run_broadcast(store.write, bid, policy=POLICY, clock=clock) is None


async def test_group_topic_and_list_targets(store: Store) -> None:
    ids = await store.write(build_world)

    def setup(c):  # type: ignore[no-untyped-def]
        gid = c.execute(groups.insert().values(name="north-shops").returning(groups.c.id)
                        ).scalar_one()
        c.execute(group_members.insert(), [{"group_id": gid, "account_id": ids[k]}
                                           for k in ("R1", "R3", "R4")])
        outage = topics.by_code(c, "OUTAGE")
        topics.subscribe(c, PH_S1, outage.id, window=(8, 20), now=NOW)
        topics.subscribe(c, PH_R3, outage.id, window=None, now=NOW)
        topics.subscribe(c, "8613500000001", outage.id, window=None, now=NOW)
        topics.unsubscribe(c, "8613500000001", outage.id)  # topic unsubscribe

    await store.write(setup)
    night = Clock(local(2025, 1, 6, 22))
    expected = {
        ("group", "north-shops"): [PH_R1, PH_R3],
        ("topic", "outage"): [PH_S1, PH_R3],
        ("list", f"{PH_MGR}, {PH_MGR} 8613500000002"): [PH_MGR, "8613500000002"],
    }
    for (kind, target), phones in expected.items():
        bid = await store.write(lambda c, kind=kind, target=target: sn.create_broadcast(
            c, name=kind, target_kind=kind, target=target, text="hi", now=night()))
        assert await run_broadcast(store.write, bid, policy=POLICY, clock=night) == "done"
        msgs = await _messages(store, bid)
        assert [m.dest_addr for m in msgs] == phones, kind
        if kind == "topic":  # the subscription's window (08-20) holds S1 until 08:00
            assert msgs[0].schedule_at == local(2025, 1, 7, 8) and msgs[1].schedule_at is None


async def test_chunks_progress_and_scheduled_start(store: Store) -> None:
    numbers = [f"86135000{i:05d}" for i in range(25)]
    await store.write(lambda c: topics.unsubscribe_all(c, numbers[3], now=NOW))
    clock = Clock(NOW)
    bid = await store.write(lambda c: sn.create_broadcast(
        c, name="later", target_kind="list", target=numbers, text="x", now=NOW,
        schedule_at=NOW + timedelta(hours=1), priority=2))
    chunks: list[int] = []
    runner = BroadcastRunner(store, POLICY, clock=clock, chunk=10,
                             on_enqueued=lambda: chunks.append(1))
    assert await runner.run_due() == {}  # not due yet
    assert (await store.read(lambda c: sn.get_broadcast(c, bid)))["status"] == "scheduled"
    clock.now = NOW + timedelta(hours=1)
    assert await runner.run_due() == {bid: "done"}
    assert len(chunks) == 3  # 24 recipients in chunks of 10
    b = await store.read(lambda c: sn.get_broadcast(c, bid))
    assert (b["total"], b["queued"], b["skipped"]) == (25, 24, 1)
    msgs = await _messages(store, bid)
    assert len({m.dest_addr for m in msgs}) == 24 and numbers[3] not in {m.dest_addr
                                                                          for m in msgs}
    assert all(m.priority == 2 for m in msgs)
    history = await store.read(lambda c: outbound.get_message(c, msgs[0].id))
    assert [e["status"] for e in history["events"]] == ["queued"]


async def test_resume_after_a_stop_mid_way(store: Store) -> None:
    numbers = [f"86135000{i:05d}" for i in range(7)]
    bid = await store.write(lambda c: sn.create_broadcast(
        c, name="r", target_kind="list", target=numbers, text="x", now=NOW))
    plan = await store.write(lambda c: sn.start_broadcast(c, bid, now=NOW))
    assert plan is not None and len(plan.pending) == 7
    await store.write(lambda c: sn.enqueue_broadcast_chunk(c, bid, plan.pending[:3], now=NOW))
    # The runner "crashed". Not stale yet: nobody takes it; stale: resumed without duplicates.
    clock = Clock(NOW + timedelta(seconds=10))
    runner = BroadcastRunner(store, POLICY, clock=clock)
    assert await runner.run_due() == {}
    clock.now = NOW + timedelta(minutes=5)
    assert await runner.run_due() == {bid: "done"}
    msgs = await _messages(store, bid)
    assert sorted(m.dest_addr for m in msgs) == numbers
    assert (await store.read(lambda c: sn.get_broadcast(c, bid)))["queued"] == 7


async def test_cancel_broadcast(store: Store) -> None:
    numbers = [f"86135000{i:05d}" for i in range(5)]
    bid = await store.write(lambda c: sn.create_broadcast(
        c, name="oops", target_kind="list", target=numbers, text="wrong text", now=NOW))
    assert await run_broadcast(store.write, bid, policy=POLICY, clock=Clock(NOW)) == "done"
    msgs = await _messages(store, bid)
    # One message already claimed by the dispatcher: it cannot be cancelled any more.
    claimed = await store.write(lambda c: outbound.claim_batch(
        c, instance="t", connection="c", now=NOW, limit=1))
    assert len(claimed) == 1
    result = await store.write(lambda c: sn.cancel_broadcast(c, bid, now=NOW))
    assert result == {"status": "cancelled", "cancelled": 4}
    b = await store.read(lambda c: sn.get_broadcast(c, bid))
    assert b["status"] == "cancelled" and b["messages"] == {"cancelled": 4, "sending": 1}
    one = next(m for m in msgs if m.id != claimed[0].id)
    history = await store.read(lambda c: outbound.get_message(c, one.id))
    assert [e["status"] for e in history["events"]] == ["queued", "cancelled"]
    assert await store.write(lambda c: sn.cancel_broadcast(c, 999999, now=NOW)) is None


async def test_cancel_before_it_runs_and_mid_run(store: Store) -> None:
    numbers = [f"86135000{i:05d}" for i in range(30)]
    bid = await store.write(lambda c: sn.create_broadcast(
        c, name="later", target_kind="list", target=numbers, text="x", now=NOW,
        schedule_at=NOW + timedelta(days=1)))
    await store.write(lambda c: sn.cancel_broadcast(c, bid, now=NOW))
    assert await run_broadcast(store.write, bid, policy=POLICY,
                               clock=Clock(NOW + timedelta(days=2))) is None
    assert await _messages(store, bid) == []
    # Mid-run: cancelled after the first chunk, the rest is never queued.
    bid2 = await store.write(lambda c: sn.create_broadcast(
        c, name="now", target_kind="list", target=numbers, text="x", now=NOW))
    chunks: list[int] = []

    async def write(fn):  # type: ignore[no-untyped-def]
        if len(chunks) == 1:
            await store.write(lambda c: sn.cancel_broadcast(c, bid2, now=NOW))
        return await store.write(fn)

    status = await run_broadcast(write, bid2, policy=POLICY, chunk=10, clock=Clock(NOW),
                                 on_chunk=chunks.append)
    assert status == "cancelled" and chunks == [10]
    b = await store.read(lambda c: sn.get_broadcast(c, bid2))
    assert b["status"] == "cancelled" and b["messages"] == {"cancelled": 10}


@pytest.mark.parametrize(("kind", "target", "error"), [
    ("segment", {"colour": "red"}, "unknown segment filters"),
    ("segment", {}, "at least one filter"),
    ("list", [], "needs numbers"),
    ("nope", "x", "target_kind"),
])
async def test_bad_targets(store: Store, kind: str, target: object, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        await store.write(lambda c: sn.create_broadcast(
            c, name="bad", target_kind=kind, target=target, text="x", now=NOW))


async def test_missing_group_cancels_the_broadcast(store: Store) -> None:
    bid = await store.write(lambda c: sn.create_broadcast(
        c, name="g", target_kind="group", target="ghosts", text="x", now=NOW))
    assert await run_broadcast(store.write, bid, policy=POLICY, clock=Clock(NOW)) == \
        "cancelled"
