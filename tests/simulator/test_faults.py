"""Fault injection in the simulator, seen from a plain ESME over loopback TCP: the Python
API, the control API and the reserved destination numbers."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from pydantic import ValidationError

from gateway.smpp import status as st
from gateway.smpp.connection import BindError, ConnectionClosed, ResponseTimeout, connect
from simulator import Simulator
from simulator.faults import fault_for_number, parse_status

from .conftest import Esme, bind, sim_config, submit_params

PHONE = "8613800000001"


async def submit(conn, dest: str = PHONE, text: bytes = b"hi", timeout: float | None = None):
    return await conn.request("submit_sm", submit_params(dest, text, registered_delivery=0),
                              timeout=timeout)


async def test_withhold_keeps_the_response_but_delivers(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    sim.faults.withhold()
    with pytest.raises(ResponseTimeout):
        await submit(conn, text=b"lost answer", timeout=0.3)
    inbox = await sim.wait_for_inbox(PHONE, 1)
    assert inbox[0].text == "lost answer"  # accepted although never answered
    # One-shot: the next submit is answered.
    assert (await submit(conn, timeout=1)).status == st.ESME_ROK
    assert sim.faults.list() == [] and sim.faults.fired["withhold"] == 1


async def test_withhold_without_accepting(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    sim.faults.withhold(accept=False)
    with pytest.raises(ResponseTimeout):
        await submit(conn, timeout=0.3)
    await asyncio.sleep(0.1)
    assert sim.handset(PHONE).inbox == []


async def test_delay_answers_late(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    sim.faults.delay(0.4)
    started = time.monotonic()
    resp = await submit(conn, timeout=2)
    assert resp.status == st.ESME_ROK and resp.params["message_id"]
    assert time.monotonic() - started >= 0.4


async def test_status_burst_then_normal(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    sim.faults.status("ESME_RTHROTTLED", count=3)
    got = [(await submit(conn)).status for _ in range(5)]
    assert got == [st.ESME_RTHROTTLED] * 3 + [st.ESME_ROK] * 2
    inbox = await sim.wait_for_inbox(PHONE, 2)
    assert len(inbox) == 2  # refused submits deliver nothing


async def test_fault_limited_to_a_destination_prefix(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    sim.faults.status("RINVDSTADR", count=None, to="86139")
    assert (await submit(conn, "8613900000001")).status == st.ESME_RINVDSTADR
    assert (await submit(conn, PHONE)).status == st.ESME_ROK
    assert (await submit(conn, "8613900000002")).status == st.ESME_RINVDSTADR
    assert len(sim.faults.list()) == 1  # count null: armed until removed
    assert sim.faults.clear() == 1
    assert (await submit(conn, "8613900000001")).status == st.ESME_ROK


async def test_reserved_numbers(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    assert (await submit(conn, "8699903020")).status == st.ESME_RMSGQFUL
    assert (await submit(conn, "8699903008123")).status == st.ESME_RSYSERR
    with pytest.raises(ResponseTimeout):
        await submit(conn, "8699901", timeout=0.3)
    started = time.monotonic()
    assert (await submit(conn, "8699902001", timeout=3)).status == st.ESME_ROK
    assert time.monotonic() - started >= 1.0
    # Not a fault code: an ordinary handset.
    assert (await submit(conn, "8699999")).status == st.ESME_ROK
    assert sim.stats()["faults"]["fired"] == {"status": 2, "withhold": 1, "delay": 1}


def test_number_plan_parsing() -> None:
    assert fault_for_number("8699902045", "86999").seconds == 45
    assert fault_for_number("+8699902", "86999").seconds == 30
    assert fault_for_number("8699903088", "86999").status == st.ESME_RTHROTTLED
    assert fault_for_number("869990620", "86999").variant == "long_length"
    assert fault_for_number("8699907", "86999").kind == "stop_reading"
    assert fault_for_number("8699901", "") is None  # plan off
    assert fault_for_number("8613800000001", "86999") is None
    assert parse_status("0x14") == parse_status("RMSGQFUL") == parse_status(20) == 0x14
    with pytest.raises(ValueError, match="unknown status"):
        parse_status("ESME_NOPE")


async def test_number_plan_can_be_turned_off() -> None:
    async with Simulator(sim_config(fault_prefix="")) as s:
        conn, _ = await bind(s)
        assert (await submit(conn, "8699903020")).status == st.ESME_ROK


async def test_drop_mid_window_delivers_what_was_accepted(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    sim.faults.add({"kind": "drop"})
    with pytest.raises(ConnectionClosed):
        await submit(conn, text=b"dropped")
    await sim.wait_for_inbox(PHONE, 1)
    assert sim.stats()["binds"]["current"] == 0


async def test_unbind_after_answering(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    sim.faults.add({"kind": "unbind"})
    assert (await submit(conn)).status == st.ESME_ROK
    reason = await asyncio.wait_for(conn.closed, 2)
    assert "unbound by peer" in reason


@pytest.mark.parametrize("variant,fatal", [("short_length", True), ("long_length", True),
                                           ("unknown_command", False),
                                           ("truncated_body", False)])
async def test_malformed_pdus(sim: Simulator, variant: str, fatal: bool) -> None:
    conn, _ = await bind(sim)
    sim.faults.add({"kind": "malformed", "variant": variant})
    if fatal:  # a bad command_length desynchronises the stream: the ESME must hang up
        with pytest.raises(ConnectionClosed):
            await submit(conn, timeout=2)
        assert "command_length" in await conn.closed
    else:  # the ESME nacks the garbage and carries on
        assert (await submit(conn, timeout=2)).status == st.ESME_ROK
        assert (await submit(conn, timeout=2)).status == st.ESME_ROK
        assert conn.bound


async def test_stop_reading_then_resume(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    sim.faults.add({"kind": "stop_reading", "seconds": 0.5})
    assert (await submit(conn)).status == st.ESME_ROK
    started = time.monotonic()
    assert (await submit(conn, timeout=3)).status == st.ESME_ROK  # read after the pause
    assert time.monotonic() - started >= 0.4


async def test_refuse_binds_for_a_while(sim: Simulator) -> None:
    sim.faults.refuse_binds(0.5, "ESME_RBINDFAIL")
    with pytest.raises(BindError) as err:
        await bind(sim)
    assert err.value.status == st.ESME_RBINDFAIL
    await asyncio.sleep(0.6)
    conn, _ = await bind(sim)
    assert conn.bound and sim.faults.list() == []


async def test_deliver_before_bind_resp(sim: Simulator) -> None:
    sim.faults.add({"kind": "deliver_before_bind", "from": "8613800000077", "text": "BAL"})
    esme = Esme()
    conn = await connect("127.0.0.1", sim.port, esme)
    await conn.bind("bind_transceiver", "smsgw", "secret")
    pdu = await esme.next()  # the early copy was refused by the session (RINVBNDSTS) ...
    assert pdu.params["source_addr"] == "8613800000077"
    await asyncio.sleep(0.1)
    assert len(esme.all) == 1  # ... and the MO arrived once, after the bind
    assert sim.stats()["mo"]["delivered"] == 1


async def test_control_api(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.control_port}") as http:
        r = await http.post("/faults", json={"kind": "status", "status": "ESME_RSYSERR",
                                             "count": 2})
        assert r.status_code == 201, r.text
        fault = r.json()
        assert fault["status"] == st.ESME_RSYSERR and fault["left"] == 2
        r = await http.post("/faults", json={"kind": "delay", "seconds": 30, "count": None})
        assert r.status_code == 201
        listed = (await http.get("/faults")).json()
        assert [f["kind"] for f in listed["armed"]] == ["status", "delay"]
        assert listed["number_prefix"] == "86999"
        assert (await submit(conn)).status == st.ESME_RSYSERR
        assert (await http.get("/faults")).json()["armed"][0]["left"] == 1
        assert (await http.delete(f"/faults/{fault['id']}")).json() == {"cleared": 1}
        assert (await http.delete(f"/faults/{fault['id']}")).status_code == 404
        assert (await http.delete("/faults")).json() == {"cleared": 1}
        assert (await submit(conn)).status == st.ESME_ROK
        for bad in ({"kind": "explode"}, {"kind": "status", "status": "ESME_NOPE"},
                    {"kind": "delay", "seconds": -1}, {"kind": "withhold", "colour": 1}):
            r = await http.post("/faults", json=bad)
            assert r.status_code == 422, (bad, r.text)


def test_bad_specs_are_refused() -> None:
    from simulator.faults import Faults

    with pytest.raises(ValidationError):
        Faults().add({"kind": "malformed", "variant": "odd"})
