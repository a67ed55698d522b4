"""Fixtures for the simulator tests: a running simulator on ephemeral ports and an ESME."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.smpp import status as st
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import Reply, SmppConnection, connect
from gateway.smpp.session import BindRequested
from simulator import Simulator, SimulatorConfig


class Esme:
    """A test ESME handler: records every deliver_sm; answers with ``status_for(pdu)``."""

    def __init__(self, status_for: Callable[[Pdu], int] | None = None) -> None:
        self.received: asyncio.Queue[Pdu] = asyncio.Queue()
        self.all: list[Pdu] = []
        self.status_for = status_for or (lambda pdu: st.ESME_ROK)

    async def on_request(self, conn: SmppConnection, pdu: Pdu) -> Reply:
        self.all.append(pdu)
        await self.received.put(pdu)
        return Reply(self.status_for(pdu))

    async def on_bind(self, conn: SmppConnection, event: BindRequested) -> int:
        return st.ESME_RBINDFAIL

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        pass

    async def next(self, timeout: float = 5.0) -> Pdu:
        return await asyncio.wait_for(self.received.get(), timeout)


def sim_config(**overrides: Any) -> SimulatorConfig:
    base: dict[str, Any] = dict(port=0, control_port=None, receipt_delay=0.05,
                                mo_retry_interval=0.1, response_timeout=1.0, seed=1234,
                                accounts={"smsgw": "secret", "other": "pw2"})
    base.update(overrides)
    return SimulatorConfig(**base)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(sim_config(control_port=0)) as s:
        yield s


async def bind(sim: Simulator, command: str = "bind_transceiver", system_id: str = "smsgw",
               password: str = "secret", handler: Esme | None = None
               ) -> tuple[SmppConnection, Esme]:
    handler = handler or Esme()
    conn = await connect("127.0.0.1", sim.port, handler)
    await conn.bind(command, system_id, password)
    return conn, handler


def submit_params(dest: str, short_message: bytes, *, dc: int = 0, esm_class: int = 0,
                  registered_delivery: int = 1, source: str = "10690") -> dict[str, Any]:
    return {"source_addr_ton": 3, "source_addr_npi": 1, "source_addr": source,
            "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": dest,
            "esm_class": esm_class, "registered_delivery": registered_delivery,
            "data_coding": dc, "short_message": short_message}
