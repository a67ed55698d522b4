"""Listener limits over real TCP, on both SMPP listeners (tests/listeners/conftest.py):
connection caps, the unbound-session timeout, the slow-loris PDU read timeout and the cap on
requests awaiting our answer (issue 9: 2,000 idle connections were all held)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.smpp import status as st
from gateway.smpp.listener import ListenerLimits
from tests.listeners.conftest import ListenerFactory, RawClient, submit_params

pytestmark = pytest.mark.timeout(60)


async def test_total_connection_cap(open_listener: ListenerFactory,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "smsgw.smpp")
    async with open_listener(ListenerLimits(max_connections=3, max_per_source=None)) as lst:
        held = [await RawClient.open(lst.port) for _ in range(3)]
        extra = await RawClient.open(lst.port)
        assert await extra.closed_within(2.0), "the 4th connection was held"
        assert lst.gate.total == 3 and lst.gate.refused == 1
        assert any("max 3" in r.getMessage() and "refused" in r.getMessage()
                   for r in caplog.records)
        # The held ones still work: a bind succeeds on one of them.
        assert (await held[0].bind()).status == st.ESME_ROK
        await held[1].close()
        await asyncio.sleep(0.2)
        again = await RawClient.open(lst.port)
        assert (await again.bind()).status == st.ESME_ROK, "a slot freed by a close is reused"
        for c in (*held, extra, again):
            await c.close()


async def test_per_source_cap_leaves_other_sources_alone(open_listener: ListenerFactory) -> None:
    async with open_listener(ListenerLimits(max_connections=100, max_per_source=2)) as lst:
        mine = [await RawClient.open(lst.port, local="127.0.0.1") for _ in range(2)]
        third = await RawClient.open(lst.port, local="127.0.0.1")
        assert await third.closed_within(2.0)
        # Another source address on loopback is counted on its own.
        other = await RawClient.open(lst.port, local="127.0.0.2")
        assert not await other.closed_within(0.3)
        assert (await other.bind()).status == st.ESME_ROK
        assert lst.gate.by_source == {"127.0.0.1": 2, "127.0.0.2": 1}
        for c in (*mine, third, other):
            await c.close()


async def test_unbound_connection_is_closed_bound_one_stays(
        open_listener: ListenerFactory) -> None:
    async with open_listener(ListenerLimits(bind_timeout=0.5)) as lst:
        bound = await RawClient.open(lst.port)
        assert (await bound.bind()).status == st.ESME_ROK
        idle = await RawClient.open(lst.port)
        assert await idle.closed_within(5.0), "a connection that never binds was held"
        await bound.send_raw(bound.pdu("enquire_link"))
        assert (await bound.read_pdu()).command == "enquire_link_resp"
        await bound.close()
        await idle.close()


@pytest.mark.parametrize("stage", ["header", "body"])
async def test_slow_loris_pdu_is_dropped(open_listener: ListenerFactory, stage: str) -> None:
    async with open_listener(ListenerLimits(pdu_read_timeout=0.6, bind_timeout=30)) as lst:
        good = await RawClient.open(lst.port)
        assert (await good.bind()).status == st.ESME_ROK
        slow = await RawClient.open(lst.port)
        frame = slow.pdu("enquire_link")
        if stage == "body":  # a whole header announcing a body that trickles in
            frame = slow.pdu("bind_transceiver", system_id="x" * 15, password="p",
                             system_type="", interface_version=0x34, address_range="")
        loop = asyncio.get_running_loop()
        started = loop.time()
        closed = False
        first = 16 if stage == "body" else 0
        if first:
            await slow.send_raw(frame[:first])
        for i in range(first, len(frame) - 1):  # never the last octet
            try:
                await slow.send_raw(frame[i:i + 1])
            except ConnectionError:
                closed = True
                break
            if await slow.closed_within(0.1):
                closed = True
                break
        closed = closed or await slow.closed_within(3.0)
        assert closed, "a PDU trickling in was held"
        assert loop.time() - started < 4.0
        # Meanwhile the good client is served.
        await good.send_raw(good.pdu("enquire_link"))
        assert (await good.read_pdu()).command == "enquire_link_resp"
        await good.close()
        await slow.close()


async def test_unanswered_requests_are_capped_with_throttled(
        open_listener: ListenerFactory) -> None:
    async with open_listener(ListenerLimits(max_unanswered=2)) as lst:
        app = await RawClient.open(lst.port)
        assert (await app.bind()).status == st.ESME_ROK
        # Ten submits in one write: the session reads them all before any is answered.
        await app.send_raw(b"".join(app.pdu("submit_sm", **submit_params())
                                    for _ in range(10)))
        resps = [await app.read_pdu() for _ in range(10)]
        assert {r.command for r in resps} == {"submit_sm_resp"}
        statuses = sorted(r.status for r in resps)
        assert statuses.count(st.ESME_ROK) == 2
        assert statuses.count(st.ESME_RTHROTTLED) == 8
        # Once answered, the session takes requests again.
        await app.send_raw(app.pdu("submit_sm", **submit_params()))
        assert (await app.read_pdu()).status == st.ESME_ROK
        await app.close()


def test_limits_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.config import Settings
    from gateway.limits import api_http_limits, smpp_listener_limits
    from simulator.cli import build_parser, config_from_args
    from simulator.smsc import Simulator

    for name, value in {"SMSGW_SMPP_MAX_CONNECTIONS": "7",
                        "SMSGW_SMPP_MAX_CONNECTIONS_PER_SOURCE": "3",
                        "SMSGW_SMPP_BIND_TIMEOUT": "4.5", "SMSGW_SMPP_PDU_READ_TIMEOUT": "2",
                        "SMSGW_SMPP_MAX_UNANSWERED": "9", "SMSGW_API_MAX_CONNECTIONS": "11",
                        "SMSGW_API_HEADER_TIMEOUT": "3", "SMSGW_API_KEEP_ALIVE_TIMEOUT": "2"
                        }.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert smpp_listener_limits(s) == ListenerLimits(7, 3, 4.5, 2.0, 9)
    http = api_http_limits(s)
    assert (http.max_connections, http.header_timeout, http.keep_alive_timeout) == (11, 3, 2)

    args = build_parser().parse_args([
        "--max-connections", "5", "--max-connections-per-source", "2", "--bind-timeout", "1.5",
        "--pdu-read-timeout", "0.5", "--max-unanswered", "4"])
    sim = Simulator(config_from_args(args))
    assert sim.limits == ListenerLimits(5, 2, 1.5, 0.5, 4)
    assert sim._session_config.max_unanswered == 4
