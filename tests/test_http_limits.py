"""HTTP connection limits on the admin API and the simulator's control API (issue 9: 1,000
slow-header connections were all held): a client whose headers trickle in is closed after
the header timeout while a good client is served; past the connection cap, 503."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from gateway.app import Gateway
from gateway.config import Settings
from gateway.http_server import HttpLimits
from simulator import Simulator, SimulatorConfig
from simulator.control_api import ControlServer

pytestmark = pytest.mark.timeout(60)

Started = Callable[[HttpLimits], contextlib.AbstractAsyncContextManager[tuple[int, str]]]


@pytest.fixture(params=["admin", "control"])
def http_server(request: pytest.FixtureRequest, tmp_path: Path) -> Started:
    """`async with http_server(limits) as (port, path):` one of the two HTTP APIs."""

    @contextlib.asynccontextmanager
    async def start(limits: HttpLimits) -> AsyncIterator[tuple[int, str]]:
        if request.param == "admin":
            gw = Gateway(Settings(
                database_url=f"sqlite:///{tmp_path / 'http.db'}", sim_port=0,
                sim_control_port=0, api_port=0, smpp_server_port=None, instance="http-test",
                api_max_connections=limits.max_connections,
                api_header_timeout=limits.header_timeout,
                api_keep_alive_timeout=limits.keep_alive_timeout))
            await gw.start()
            try:
                assert gw.api_port is not None
                yield gw.api_port, "/healthz"
            finally:
                await gw.stop()
        else:
            async with Simulator(SimulatorConfig(port=0, control_port=None)) as sim:
                server = ControlServer(sim, "127.0.0.1", 0, limits=limits)
                port = await server.start()
                try:
                    yield port, "/healthz"
                finally:
                    await server.stop()

    return start


async def _slow_header_client(port: int, path: str) -> tuple[asyncio.StreamReader,
                                                             asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode())
    await writer.drain()
    return reader, writer


async def _trickle_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                within: float) -> bool:
    """Send one header octet every 0.1 s (never the final blank line); True once the
    server closes the connection."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        try:
            writer.write(b"X")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(1024), 0.1)
            if not data:
                return True
        except TimeoutError:
            continue
        except ConnectionError:
            return True
    return False


async def test_slow_header_client_dropped_good_client_served(
        http_server: Started, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "smsgw.http")
    async with http_server(HttpLimits(max_connections=100, header_timeout=0.8)) as (port, path):
        slow = [await _slow_header_client(port, path) for _ in range(20)]
        trickling = [asyncio.create_task(_trickle_until_closed(r, w, 6.0)) for r, w in slow]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as good:
            for _ in range(3):  # served while the slow ones are held
                assert (await good.get(path)).status_code == 200
                await asyncio.sleep(0.1)
        assert all(await asyncio.gather(*trickling)), "a slow-header client was held"
        assert any("no complete request headers within 0.8s" in r.getMessage()
                   for r in caplog.records)
        for _, w in slow:
            w.close()


async def test_connection_cap_answers_503_until_slots_free(http_server: Started) -> None:
    async with http_server(HttpLimits(max_connections=3, header_timeout=1.0)) as (port, path):
        held = [await _slow_header_client(port, path) for _ in range(3)]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as good:
            assert (await good.get(path)).status_code == 503
            # The held connections time out (header timeout); then the good one is served.
            await asyncio.sleep(1.6)
            assert (await good.get(path, headers={"Connection": "close"})).status_code == 200
        for _, w in held:
            w.close()
