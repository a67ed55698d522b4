"""Binds, submit_sm, receipts, throttling: the simulator seen from a gateway ESME."""

from __future__ import annotations

import asyncio

import pytest

from gateway.smpp import status as st
from gateway.smpp.connection import BindError, connect
from gateway.smpp.text import parse_receipt, split_text
from simulator import Simulator

from .conftest import Esme, bind, sim_config, submit_params


async def test_wrong_password_rejected(sim: Simulator) -> None:
    conn = await connect("127.0.0.1", sim.port, Esme())
    with pytest.raises(BindError) as err:
        await conn.bind("bind_transceiver", "smsgw", "wrong")
    assert err.value.status == st.ESME_RINVPASWD
    assert sim.stats()["binds"]["refused_total"] == 1


async def test_unknown_system_id_rejected(sim: Simulator) -> None:
    conn = await connect("127.0.0.1", sim.port, Esme())
    with pytest.raises(BindError) as err:
        await conn.bind("bind_transmitter", "nobody", "secret")
    assert err.value.status == st.ESME_RINVSYSID


async def test_several_concurrent_binds(sim: Simulator) -> None:
    binds = await asyncio.gather(
        bind(sim, "bind_transmitter"), bind(sim, "bind_receiver"),
        bind(sim, "bind_transceiver"), bind(sim, "bind_transceiver", "other", "pw2"),
        *(bind(sim) for _ in range(4)))
    b = sim.stats()["binds"]
    assert (b["current"], b["transmitter"], b["receiver"], b["transceiver"]) == (8, 1, 1, 6)
    for conn, _ in binds:
        await conn.unbind()
    await asyncio.sleep(0.05)
    assert sim.stats()["binds"]["current"] == 0


async def test_submit_gives_unique_ids_and_reaches_inbox(sim: Simulator) -> None:
    conns = [(await bind(sim))[0] for _ in range(3)]
    resps = await asyncio.gather(*(
        c.request("submit_sm", submit_params("8613800000001", f"hi {i}".encode(),
                                             registered_delivery=0))
        for i in range(30) for c in conns))
    ids = [r.params["message_id"] for r in resps]
    assert all(r.status == st.ESME_ROK for r in resps)
    assert len(set(ids)) == 90 and all(int(i, 16) for i in ids)  # hex by default
    inbox = await sim.wait_for_inbox("8613800000001", 90)
    assert {m.message_ids[0] for m in inbox} == set(ids)


async def test_decimal_ids() -> None:
    async with Simulator(sim_config(message_id_format="decimal")) as s:
        conn, _ = await bind(s)
        resp = await conn.request("submit_sm", submit_params("861", b"x", registered_delivery=0))
        assert resp.params["message_id"].isdigit()


async def test_receipt_has_id_stat_and_tlvs(sim: Simulator) -> None:
    conn, esme = await bind(sim)
    resp = await conn.request("submit_sm", submit_params("8613800000002", b"Hello"))
    mid = resp.params["message_id"]
    dlr = await esme.next()
    assert dlr.command == "deliver_sm"
    assert dlr.params["esm_class"] == 0x04
    assert dlr.params["source_addr"] == "8613800000002"
    assert dlr.params["destination_addr"] == "10690"
    assert dlr.params["receipted_message_id"] == mid
    assert dlr.params["message_state"] == 2  # DELIVERED
    receipt = parse_receipt(dlr.params["short_message"].decode("ascii"))
    assert receipt is not None
    assert (receipt.id, receipt.stat, receipt.sub, receipt.dlvrd, receipt.err) == \
        (mid, "DELIVRD", 1, 1, "000")
    assert receipt.text == "Hello"
    assert sim.stats()["receipts"]["sent"] == 1


async def test_no_receipt_unless_asked(sim: Simulator) -> None:
    conn, esme = await bind(sim)
    await conn.request("submit_sm", submit_params("861", b"x", registered_delivery=0))
    await asyncio.sleep(0.2)
    assert esme.received.empty()


async def _outcomes(seed: int, n: int = 40) -> list[str]:
    cfg = sim_config(seed=seed, receipt_delay=0,
                     receipt_outcomes={"DELIVRD": 0.6, "UNDELIV": 0.3, "EXPIRED": 0.1})
    async with Simulator(cfg) as s:
        conn, esme = await bind(s)
        order = []
        for i in range(n):  # one at a time: the outcome sequence follows submit order
            r = await conn.request("submit_sm", submit_params("862", f"m{i}".encode()))
            order.append(r.params["message_id"])
        got = {}
        for _ in range(n):
            dlr = await esme.next()
            rc = parse_receipt(dlr.params["short_message"].decode())
            assert rc is not None
            got[rc.id] = rc.stat
            assert dlr.params["message_state"] == {"DELIVRD": 2, "UNDELIV": 5,
                                                   "EXPIRED": 3}[rc.stat]
            if rc.stat != "DELIVRD":
                assert dlr.params["network_error_code"][0] == 3
        inbox = s.handset("862").inbox
        assert len(inbox) == sum(1 for v in got.values() if v == "DELIVRD")
        return [got[m] for m in order]


async def test_outcome_mix_is_deterministic_with_seed() -> None:
    a, b, c = await _outcomes(7), await _outcomes(7), await _outcomes(8)
    assert a == b
    assert a != c
    assert set(a) == {"DELIVRD", "UNDELIV", "EXPIRED"}


async def test_receipt_goes_to_same_system_id_and_waits_for_a_receiver() -> None:
    async with Simulator(sim_config(receipt_delay=0)) as s:
        tx, _ = await bind(s, "bind_transmitter")
        _, other = await bind(s, "bind_receiver", "other", "pw2")
        resp = await tx.request("submit_sm", submit_params("863", b"queued"))
        await asyncio.sleep(0.2)
        assert other.received.empty()
        assert s.stats()["receipts"]["pending"] == 1
        _, mine = await bind(s, "bind_receiver")
        dlr = await mine.next()
        assert dlr.params["receipted_message_id"] == resp.params["message_id"]
        assert other.received.empty()


async def test_receipt_tlvs_can_be_switched_off() -> None:
    async with Simulator(sim_config(receipt_tlvs=False, receipt_delay=0)) as s:
        conn, esme = await bind(s)
        await conn.request("submit_sm", submit_params("864", b"x"))
        dlr = await esme.next()
        assert "receipted_message_id" not in dlr.params
        assert "message_state" not in dlr.params


async def test_validation_errors(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    r = await conn.request("submit_sm", submit_params("", b"x"))
    assert r.status == st.ESME_RINVDSTADR
    r = await conn.request("submit_sm", submit_params("865", b"x", dc=5))
    assert r.status == st.ESME_RINVDCS
    assert sim.stats()["submits"]["by_status"] == {"ESME_RINVDSTADR": 1, "ESME_RINVDCS": 1}


async def test_throttle(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    sim.set_throttle(5)
    resps = [await conn.request("submit_sm", submit_params("866", b"x", registered_delivery=0))
             for _ in range(20)]
    statuses = [r.status for r in resps]
    assert statuses.count(st.ESME_RTHROTTLED) >= 10
    assert statuses[:5] == [st.ESME_ROK] * 5
    sim.set_throttle(0)
    r = await conn.request("submit_sm", submit_params("866", b"x", registered_delivery=0))
    assert r.status == st.ESME_ROK


async def test_query_sm(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    r = await conn.request("submit_sm", submit_params("867", b"x", registered_delivery=0))
    await asyncio.sleep(0.1)
    q = await conn.request("query_sm", {"message_id": r.params["message_id"],
                                        "source_addr": "10690"})
    assert q.status == st.ESME_ROK and q.params["message_state"] == 2
    q = await conn.request("query_sm", {"message_id": "nope", "source_addr": "10690"})
    assert q.status == st.ESME_RINVMSGID


async def test_drop_connections_and_stop_unbinds(sim: Simulator) -> None:
    c1, _ = await bind(sim)
    c2, _ = await bind(sim)
    assert sim.drop_connections() == 2
    await asyncio.wait_for(asyncio.gather(c1.closed, c2.closed), 2)
    c3, _ = await bind(sim)
    await sim.stop()
    assert "unbound" in await asyncio.wait_for(c3.closed, 2)


async def test_sar_tlv_parts_reassembled(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    for seq, chunk in ((2, b" world"), (1, b"hello")):
        p = submit_params("868", chunk, registered_delivery=0)
        p.update(sar_msg_ref_num=300, sar_total_segments=2, sar_segment_seqnum=seq)
        assert (await conn.request("submit_sm", p)).status == st.ESME_ROK
    [msg] = await sim.wait_for_inbox("868", 1)
    assert msg.text == "hello world" and msg.parts == 2


def test_split_helper_sanity() -> None:
    assert len(split_text("a" * 161, ref=1).parts) == 2
