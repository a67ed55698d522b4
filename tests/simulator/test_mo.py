"""MO injection (HTTP control API and Python API): delivery, queueing, retries."""

from __future__ import annotations

import asyncio

import httpx

from gateway.smpp import status as st
from gateway.smpp.text import DC_GSM7, DC_UCS2, decode_text, parse_udh
from simulator import Simulator

from .conftest import Esme, bind, sim_config, submit_params


def _text(pdus: list) -> str:
    parts = []
    for p in pdus:
        info, payload = parse_udh(p.params["short_message"], p.params["esm_class"])
        parts.append((info.seq if info else 1, decode_text(payload, p.params["data_coding"])))
    return "".join(t for _, t in sorted(parts))


async def test_mo_via_http_gsm_and_chinese(sim: Simulator) -> None:
    _, esme = await bind(sim)
    base = f"http://127.0.0.1:{sim.control_port}"
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/mo", json={"from": "8613800000009", "to": "10690",
                                         "text": "BAL"})
        assert r.status_code == 202, r.text
        assert r.json()["data_coding"] == DC_GSM7 and len(r.json()["mo_ids"]) == 1
        pdu = await esme.next()
        assert pdu.params["data_coding"] == DC_GSM7
        assert (pdu.params["source_addr"], pdu.params["destination_addr"]) == \
            ("8613800000009", "10690")
        assert decode_text(pdu.params["short_message"], 0) == "BAL"

        chinese = "订货123456 1001*5 1002*3，请尽快发货。" * 4  # > 70 chars → 3 parts
        r = await http.post("/mo", json={"from": "8613800000009", "text": chinese})
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["data_coding"] == DC_UCS2 and body["parts"] >= 2
        assert body["to"] == sim.config.default_short_code
        pdus = [await esme.next() for _ in body["mo_ids"]]
        assert all(p.params["data_coding"] == DC_UCS2 for p in pdus)
        assert all(p.params["esm_class"] & 0x40 for p in pdus)
        assert _text(pdus) == chinese
        await sim.wait_delivered(body["mo_ids"])
        state = (await http.get(f"/mo/{body['mo_ids'][0]}")).json()
        assert state["delivered"] and state["statuses"] == ["ESME_ROK"]

        stats = (await http.get("/stats")).json()
        assert stats["mo"]["delivered"] == 1 + body["parts"]
        assert stats["binds"]["current"] == 1


async def test_control_api_validation_and_inbox(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    await conn.request("submit_sm", submit_params("8613800000010", "你好".encode("utf-16-be"),
                                                  dc=8, registered_delivery=0))
    await sim.wait_for_inbox("8613800000010", 1)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.control_port}") as http:
        assert (await http.post("/mo", json={"to": "1", "text": "x"})).status_code == 422
        r = await http.post("/mo", json={"from": "1", "text": "你好", "data_coding": 0})
        assert r.status_code == 422 and "GSM" in r.json()["detail"]
        assert (await http.put("/throttle", json={"tps": -1})).status_code == 422
        assert (await http.put("/throttle", json={"tps": 3})).json() == {"tps": 3}
        assert sim.throttle_tps == 3
        inbox = (await http.get("/handsets/8613800000010/inbox")).json()
        assert [(m["text"], m["data_coding"], m["parts"]) for m in inbox] == [("你好", 8, 1)]
        since = inbox[0]["id"]
        assert (await http.get(f"/handsets/8613800000010/inbox?since={since}")).json() == []
        assert (await http.delete("/handsets/8613800000010/inbox")).json() == {"deleted": 1}
        assert (await http.get("/healthz")).json()["status"] == "ok"
        assert (await http.post("/faults/drop")).json() == {"dropped": 1}
        assert (await http.get("/mo/nope")).status_code == 404


async def test_mo_queued_until_a_receiver_binds(sim: Simulator) -> None:
    await bind(sim, "bind_transmitter")  # a transmitter cannot take deliver_sm
    ids = await sim.inject_mo("8613800000011", "10690", "STK 1001*4")
    await asyncio.sleep(0.2)
    assert sim.stats()["mo"]["pending"] == 1
    _, esme = await bind(sim, "bind_receiver")
    pdu = await esme.next()
    assert decode_text(pdu.params["short_message"], 0) == "STK 1001*4"
    await sim.wait_delivered(ids)
    assert sim.stats()["mo"]["pending"] == 0


async def test_mo_retried_with_same_content_after_error() -> None:
    async with Simulator(sim_config(mo_retry_interval=0.05)) as s:
        answers = iter([st.ESME_RX_T_APPN, st.ESME_RSYSERR])
        esme = Esme(lambda pdu: next(answers, st.ESME_ROK))
        await bind(s, handler=esme)
        [mo_id] = await s.inject_mo("8613800000012", "10690", "ORD 123456 1001*5")
        await s.wait_delivered(mo_id)
        first, second, third = [await esme.next() for _ in range(3)]
        assert first.params == second.params == third.params
        assert len({first.sequence, second.sequence, third.sequence}) == 3
        assert s.mo(mo_id).statuses == ["ESME_RX_T_APPN", "ESME_RSYSERR", "ESME_ROK"]
        assert s.stats()["mo"]["retries"] == 2


async def test_mo_retried_after_timeout() -> None:
    async with Simulator(sim_config(mo_retry_interval=0.05, response_timeout=0.2)) as s:
        class Slow(Esme):
            calls = 0

            async def on_request(self, conn, pdu):  # type: ignore[no-untyped-def]
                Slow.calls += 1
                if Slow.calls == 1:
                    await asyncio.sleep(0.5)  # answer too late
                return await super().on_request(conn, pdu)

        await bind(s, handler=Slow())
        [mo_id] = await s.inject_mo("8613800000013", None, "HELP")
        await s.wait_delivered(mo_id, timeout=3)
        assert s.mo(mo_id).statuses[0] == "timeout"


async def test_redeliver_sends_the_same_mo_again(sim: Simulator) -> None:
    _, esme = await bind(sim)
    [mo_id] = await sim.inject_mo("8613800000014", "10690", "BAL")
    first = await esme.next()
    await sim.wait_delivered(mo_id)
    await sim.redeliver(mo_id, timeout=2)
    again = await esme.next()
    assert again.params == first.params
    assert sim.stats()["mo"]["redelivered"] == 1


async def test_mo_round_robin_over_receivers(sim: Simulator) -> None:
    _, a = await bind(sim)
    _, b = await bind(sim, "bind_receiver")
    ids = []
    for i in range(6):
        ids += await sim.inject_mo("8613800000015", "10690", f"Q {i}")
    await sim.wait_delivered(ids)
    assert len(a.all) == 3 and len(b.all) == 3
