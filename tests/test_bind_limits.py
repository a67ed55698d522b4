"""Over-long bind credentials over TCP: both SMPP listeners (the simulator and our SMPP
server for upstream applications) answer with a bind_resp carrying ESME_RINVSYSID /
ESME_RINVPASWD (SMPP 3.4 §4.1.1 limits, §5.1.3 statuses), never generic_nack."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import Settings
from gateway.smpp import codec
from gateway.smpp import status as st
from simulator import Simulator, SimulatorConfig

CASES = [(b"s" * 16, b"secret", st.ESME_RINVSYSID), (b"smsgw", b"p" * 9, st.ESME_RINVPASWD)]


def raw_bind(system_id: bytes, password: bytes, seq: int) -> bytes:
    body = system_id + b"\x00" + password + b"\x00" + b"\x00" + b"\x34\x00\x00\x00"
    return struct.pack(">LLLL", 16 + len(body), codec.COMMAND_IDS["bind_transceiver"], 0,
                       seq) + body


async def answer_to(port: int, frame: bytes) -> codec.Pdu:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        header = await asyncio.wait_for(reader.readexactly(16), 5)
        (length,) = struct.unpack(">L", header[:4])
        return codec.decode(header + await reader.readexactly(length - 16))
    finally:
        writer.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(port=0, control_port=None)) as s:
        yield s


@pytest.mark.parametrize(("system_id", "password", "status"), CASES)
async def test_simulator(sim: Simulator, system_id: bytes, password: bytes,
                         status: int) -> None:
    resp = await answer_to(sim.port, raw_bind(system_id, password, 31))
    assert (resp.command, resp.sequence, resp.status) == ("bind_transceiver_resp", 31, status)
    ok = await answer_to(sim.port, raw_bind(b"smsgw", b"secret", 32))  # still serving
    assert (ok.command, ok.status) == ("bind_transceiver_resp", st.ESME_ROK)


async def test_upstream_smpp_server(tmp_path: Path) -> None:
    gw = Gateway(Settings(
        database_url=f"sqlite:///{tmp_path / 'b.db'}", sim_port=0, sim_control_port=0,
        api_port=0, smpp_server_port=0, instance="bind-limits"))
    await gw.start(api=False)
    try:
        assert gw.upstream_server is not None
        for system_id, password, status in CASES:
            resp = await answer_to(gw.upstream_server.port, raw_bind(system_id, password, 5))
            assert (resp.command, resp.sequence, resp.status) == (
                "bind_transceiver_resp", 5, status)
    finally:
        await gw.stop()
