"""The dispatcher against real simulators over loopback: priority under load, throttling,
failover between two SMSC connections with different prefixes and costs, no route.

Each test starts the real `Gateway` (api off). Multi-connection tests start their own
`Simulator` instances on ephemeral ports and point SMSGW_CONNECTIONS_FILE at them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import Gateway
from gateway.config import Settings
from simulator.config import SimulatorConfig
from simulator.smsc import Simulator
from store import outbound
from tests.test_e2e import wait_until

SHORT_CODE = "10690"


def settings(db_url: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        database_url=db_url, sim_port=0, sim_control_port=0, api_port=0,
        smpp_server_port=None, sim_receipt_delay=0.05, poll_interval=0.05,
        reconnect_min=0.05, reconnect_max=0.3, source_addr=SHORT_CODE,
        instance="outbound-test", throttle_pause_min=0.05, throttle_pause_max=0.5)
    base.update(overrides)
    return Settings(**base)


@asynccontextmanager
async def running(s: Settings) -> AsyncIterator[Gateway]:
    gw = Gateway(s)
    await gw.start(api=False)
    try:
        for client in gw.clients:
            await asyncio.wait_for(client.wait_bound(), 10)
        yield gw
    finally:
        await gw.stop()


@asynccontextmanager
async def simulators(n: int, **cfg: Any) -> AsyncIterator[list[Simulator]]:
    sims = [Simulator(SimulatorConfig(port=0, control_port=None, receipt_delay=0.05, **cfg))
            for _ in range(n)]
    for sim in sims:
        await sim.start()
    try:
        yield sims
    finally:
        for sim in sims:
            await sim.stop()


def connections_file(tmp_path: Path, entries: list[dict[str, Any]]) -> str:
    path = tmp_path / "connections.yaml"
    path.write_text(yaml.safe_dump({"connections": entries}))
    return str(path)


async def enqueue_many(gw: Gateway, items: Iterable[tuple[str, str, int]]) -> list[int]:
    """One transaction for many rows (as a broadcast does), then wake the dispatcher."""
    items = list(items)
    now = datetime.now(UTC)
    assert gw.store is not None
    ids = await gw.store.write(lambda c: [outbound.enqueue_mt(
        c, dest_addr=to, text=text, priority=p, now=now, source_addr=SHORT_CODE)
        for to, text, p in items])
    gw.dispatcher.wake()
    return ids


async def statuses(gw: Gateway, ids: list[int]) -> dict[int, dict[str, Any]]:
    assert gw.store is not None
    rows = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT id, status, connection, cost_millis, parts, error_text, possibly_duplicate "
        "FROM outbound_messages").mappings().all())
    wanted = set(ids)
    return {r["id"]: dict(r) for r in rows if r["id"] in wanted}


async def all_in(gw: Gateway, ids: list[int], states: set[str]) -> bool:
    found = await statuses(gw, ids)
    return len(found) == len(ids) and all(r["status"] in states for r in found.values())


SENT = {"submitted", "delivered"}


async def test_priority_one_overtakes_a_queued_bulk_send(db_url: str) -> None:
    # 300 bulk at 300 submit_sm/s take a second; 5 replies queued right behind them must
    # leave within the first claim or two, not after the bulk.
    async with running(settings(db_url, smsc_tps=300)) as gw:
        bulk = await enqueue_many(gw, ((f"86139{i:08d}", f"promo {i}", 3) for i in range(300)))
        await asyncio.sleep(0.05)
        replies = await enqueue_many(gw, ((f"86137{i:08d}", f"reply {i}", 1) for i in range(5)))
        assert gw.store is not None
        # Parts already on their way when the replies were queued (how many depends on the
        # machine's speed): the replies may only wait behind what the dispatcher had claimed.
        gone = await gw.store.read(lambda c: c.exec_driver_sql(
            "SELECT count(*) FROM outbound_parts").scalar())
        await wait_until(lambda: all_in(gw, bulk + replies, SENT), timeout=30)
        order = await gw.store.read(lambda c: list(c.exec_driver_sql(
            "SELECT message_id FROM outbound_parts ORDER BY id").scalars()))
        ranks = [order.index(r) for r in replies]
        # Ahead of the replies: what had gone and what the dispatcher had claimed or had in
        # its window. The bound was also capped at 200, which a fast start made impossible
        # (gone = 190 when the replies were queued); ahead of the rest of the bulk is the rule.
        claimed_ahead = gw.settings.claim_batch + gw.settings.window
        assert max(ranks) < min(gone + claimed_ahead + len(replies), len(bulk)), (ranks, gone)
        # And the bulk itself went in queue order (one connection, one stream).
        bulk_order = [m for m in order if m in set(bulk)]
        assert bulk_order == sorted(bulk_order)


async def test_throttled_connection_pauses_and_keeps_order(db_url: str) -> None:
    phones = [f"8613800000{i:03d}" for i in range(3)]
    async with running(settings(db_url)) as gw:
        sim = gw.simulator
        sim.set_throttle(40)
        ids = await enqueue_many(gw, ((phones[i % 3], f"msg {i:03d}", 2) for i in range(90)))
        for phone in phones:
            inbox = await sim.wait_for_inbox(phone, 30, timeout=30)
            texts = [m.text for m in inbox]
            assert texts == sorted(texts), texts  # in order per destination
            assert len(texts) == 30
        throttled = sim.stats()["submits"]["by_status"].get("ESME_RTHROTTLED", 0)
        assert throttled > 0
        sender = gw.dispatcher.senders[gw.client.name]
        assert sender.throttled == throttled and sender.pauses >= 1
        await wait_until(lambda: all_in(gw, ids, SENT), timeout=10)
        found = await statuses(gw, ids)
        assert not any(r["possibly_duplicate"] for r in found.values())


async def test_long_message_throttled_mid_way_arrives_whole(db_url: str) -> None:
    text = "Your order 12345 has been approved. " * 12  # 432 GSM chars → 3 parts
    async with running(settings(db_url)) as gw:
        sim = gw.simulator
        sim.set_throttle(2)  # burst 2: the third part of the first message is refused
        ids = [await gw.enqueue("8613800000042", f"{i} {text}") for i in range(2)]
        inbox = await sim.wait_for_inbox("8613800000042", 2, timeout=20)
        assert [m.text for m in inbox] == [f"0 {text}", f"1 {text}"]
        assert sim.stats()["submits"]["by_status"].get("ESME_RTHROTTLED", 0) > 0
        await wait_until(lambda: all_in(gw, ids, {"delivered"}), timeout=10)
        assert gw.store is not None
        msg = await gw.store.read(lambda c: outbound.get_message(c, ids[0]))
        assert msg["parts"] == 3 and all(p["status"] == "delivered"
                                         for p in msg["parts_detail"])


async def test_failover_between_two_smscs_by_prefix_and_cost(db_url: str,
                                                               tmp_path: Path) -> None:
    async with simulators(2) as (cheap_sim, dear_sim):
        path = connections_file(tmp_path, [
            {"name": "cheap", "host": "127.0.0.1", "port": cheap_sim.port,
             "system_id": "smsgw", "password": "secret", "prefixes": ["86138"],
             "cost_per_part": "0.010", "tps": 20},
            {"name": "dear", "host": "127.0.0.1", "port": dear_sim.port,
             "system_id": "smsgw", "password": "secret", "cost_per_part": 0.05},
        ])
        async with running(settings(db_url, connections_file=path)) as gw:
            assert gw.simulator is None and [c.name for c in gw.clients] == ["cheap", "dear"]
            local = await enqueue_many(gw, ((f"8613800001{i:03d}", f"a{i}", 2)
                                            for i in range(5)))
            other = await enqueue_many(gw, ((f"8613900001{i:03d}", f"b{i}", 2)
                                            for i in range(5)))
            chinese = await enqueue_many(gw, [("8613800009999", "您好" * 40, 2)])  # 2 parts
            await wait_until(lambda: all_in(gw, local + other + chinese, SENT), timeout=15)
            found = await statuses(gw, local + other + chinese)
            assert {found[i]["connection"] for i in local + chinese} == {"cheap"}
            assert {found[i]["cost_millis"] for i in local} == {10}
            assert found[chinese[0]]["cost_millis"] == 20  # 2 parts x 0.010
            assert {found[i]["connection"] for i in other} == {"dear"}
            assert {found[i]["cost_millis"] for i in other} == {50}
            for i in range(5):
                assert cheap_sim.handset(f"8613800001{i:03d}").inbox
                assert dear_sim.handset(f"8613900001{i:03d}").inbox

            # A backlog on the cheap (20/s) link, then it dies: what it had claimed and not
            # sent goes back to the queue and out through the dear one.
            backlog = await enqueue_many(gw, ((f"8613800002{i:03d}", f"c{i}", 2)
                                              for i in range(60)))
            await wait_until(lambda: cheap_sim.stats()["submits"]["accepted"] > 12, timeout=10)
            await cheap_sim.stop()
            await wait_until(lambda: all_in(gw, backlog, SENT), timeout=20)
            found = await statuses(gw, backlog)
            via = {i: r["connection"] for i, r in found.items()}
            assert "dear" in via.values() and "cheap" in via.values()
            for r in found.values():
                assert r["cost_millis"] == (10 if r["connection"] == "cheap" else 50), r
            # Every message reached a handset on one of the two SMSCs.
            for i in range(60):
                phone = f"8613800002{i:03d}"
                assert cheap_sim.handset(phone).inbox or dear_sim.handset(phone).inbox, phone
            # Still down: new 86138 traffic goes straight to the dear one.
            more = await enqueue_many(gw, [("8613800003000", "d", 1)])
            await wait_until(lambda: all_in(gw, more, SENT), timeout=10)
            assert (await statuses(gw, more))[more[0]]["connection"] == "dear"


async def test_destination_nobody_serves_fails_clearly(db_url: str, tmp_path: Path) -> None:
    async with simulators(2) as (a, b):
        path = connections_file(tmp_path, [
            {"name": "cn-mobile", "host": "127.0.0.1", "port": a.port, "prefixes": ["86138"],
             "system_id": "smsgw", "password": "secret"},
            {"name": "cn-unicom", "host": "127.0.0.1", "port": b.port, "prefixes": ["86130"],
             "system_id": "smsgw", "password": "secret", "ucs2": False},
        ])
        async with running(settings(db_url, connections_file=path)) as gw:
            nowhere = await enqueue_many(gw, [("15551234567", "hello", 2)])
            gsm_only = await enqueue_many(gw, [("8613000000001", "你好", 2)])
            fine = await enqueue_many(gw, [("8613800000001", "hello", 2)])
            await wait_until(lambda: all_in(gw, nowhere + gsm_only, {"failed"}), timeout=10)
            await wait_until(lambda: all_in(gw, fine, SENT), timeout=10)
            found = await statuses(gw, nowhere + gsm_only)
            assert found[nowhere[0]]["error_text"] == (
                "no route: no configured connection serves destination 15551234567")
            assert "UCS2" in found[gsm_only[0]]["error_text"]


async def test_capable_connection_down_keeps_message_queued(db_url: str,
                                                            tmp_path: Path) -> None:
    async with simulators(2) as (a, b):
        path = connections_file(tmp_path, [
            {"name": "a", "host": "127.0.0.1", "port": a.port, "prefixes": ["86138"],
             "system_id": "smsgw", "password": "secret"},
            {"name": "b", "host": "127.0.0.1", "port": b.port, "prefixes": ["86139"],
             "system_id": "smsgw", "password": "secret"},
        ])
        async with running(settings(db_url, connections_file=path)) as gw:
            port = a.port
            await a.stop()
            await wait_until(lambda: not gw.clients[0].bound, timeout=5)
            waiting = await enqueue_many(gw, [("8613800000001", "wait for a", 1)])
            fine = await enqueue_many(gw, [("8613900000001", "via b", 1)])
            await wait_until(lambda: all_in(gw, fine, SENT), timeout=10)
            await asyncio.sleep(0.3)
            assert (await statuses(gw, waiting))[waiting[0]]["status"] == "queued"
            a.config = a.config.model_copy(update={"port": port})
            await a.start()
            await wait_until(lambda: all_in(gw, waiting, SENT), timeout=10)
            assert a.handset("8613800000001").inbox[0].text == "wait for a"


@pytest.mark.parametrize("weights", [(1, 1)])
async def test_equal_cost_connections_share_the_queue_exactly_once(
        db_url: str, tmp_path: Path, weights: tuple[int, int]) -> None:
    """Two binds claiming from one queue (SKIP LOCKED on PostgreSQL): each message once."""
    async with simulators(2) as sims:
        path = connections_file(tmp_path, [
            {"name": f"smsc{i}", "host": "127.0.0.1", "port": sim.port, "system_id": "smsgw",
             "password": "secret", "cost_per_part": "0.02", "weight": w}
            for i, (sim, w) in enumerate(zip(sims, weights, strict=True))])
        async with running(settings(db_url, connections_file=path, claim_batch=10,
                                    route_seed=3)) as gw:
            ids = await enqueue_many(gw, ((f"8613700{i:06d}", f"n{i}", 2) for i in range(200)))
            await wait_until(lambda: all_in(gw, ids, SENT), timeout=30)
            accepted = [s.stats()["submits"]["accepted"] for s in sims]
            assert sum(accepted) == 200, accepted
            assert min(accepted) > 40, accepted  # both carried a share
            found = await statuses(gw, ids)
            assert {r["cost_millis"] for r in found.values()} == {20}
            assert not any(r["possibly_duplicate"] for r in found.values())
