"""Upstream SMPP binds under attack, over real TCP: lockout per source address and per
system_id, no system_id enumeration by status or timing, and a bind flood that neither stalls
a good bind from another address nor grows memory without bound.

Binds come from distinct source addresses: on Linux all of 127.0.0.0/8 is loopback.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from commands.pins import hash_password
from gateway.app import Gateway
from gateway.config import Settings
from gateway.metrics import METRICS
from gateway.smpp import status as st
from gateway.smpp.codec import HEADER_LEN, Pdu, decode_header, encode
from store import upstream

APP, PASSWORD = "crm", "s3cret"


@asynccontextmanager
async def running(tmp_path: Path, **overrides: Any) -> AsyncIterator[Gateway]:
    gateway = Gateway(Settings(
        database_url=f"sqlite:///{tmp_path / 'binds.db'}", sim_port=0, sim_control_port=0,
        api_port=0, smpp_server_port=0, sim_receipt_delay=0.05, poll_interval=0.05,
        instance="bind-security", **overrides))
    await gateway.start(api=False)
    now = datetime.now(UTC)
    await gateway.store.write(lambda c: upstream.create_account(
        c, system_id=APP, password_hash=hash_password(PASSWORD), now=now))
    try:
        yield gateway
    finally:
        await gateway.stop()


async def bind(port: int, system_id: str, password: str, *, source: str = "127.0.0.1",
               timeout: float = 30.0) -> tuple[int, float]:
    """One bind_transceiver from ``source``: (command_status, seconds to the answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        started = time.perf_counter()
        writer.write(encode(Pdu("bind_transceiver", sequence=1, params={
            "system_id": system_id, "password": password, "system_type": "",
            "interface_version": 0x34, "addr_ton": 0, "addr_npi": 0, "address_range": ""})))
        await writer.drain()
        header = await asyncio.wait_for(reader.readexactly(HEADER_LEN), timeout)
        elapsed = time.perf_counter() - started
        length, _, status, _ = decode_header(header)
        await reader.readexactly(length - HEADER_LEN)
        return status, elapsed
    finally:
        writer.close()


def lockout_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "auth lockout" in r.getMessage()]


def counter(scope: str) -> Callable[[], float]:
    metric = METRICS.auth_lockouts.labels(kind="smpp_bind", scope=scope)
    return lambda: metric._value.get()


async def test_wrong_passwords_lock_out_the_source_and_the_system_id(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    by_source, by_id = counter("source"), counter("system_id")
    source_before, id_before = by_source(), by_id()
    async with running(tmp_path, auth_max_failures=5, auth_lockout=30) as gw:
        port = gw.upstream_server.port
        # The application's usual address binds fine before the attack.
        assert (await bind(port, APP, PASSWORD, source="127.0.0.4"))[0] == st.ESME_ROK
        for _ in range(5):
            assert (await bind(port, APP, "guess", source="127.0.0.3"))[0] == st.ESME_RBINDFAIL
        # The attacker's address is locked out, even with the right password…
        assert (await bind(port, APP, PASSWORD, source="127.0.0.3"))[0] == st.ESME_RBINDFAIL
        for _ in range(10):
            assert (await bind(port, "other", "x", source="127.0.0.3"))[0] \
                == st.ESME_RBINDFAIL
        # …the system_id too, for an address that never bound it…
        assert (await bind(port, APP, PASSWORD, source="127.0.0.5"))[0] == st.ESME_RBINDFAIL
        # …but not for the application's own address: a stranger cannot lock it out.
        assert (await bind(port, APP, PASSWORD, source="127.0.0.4"))[0] == st.ESME_ROK
    lines = lockout_lines(caplog)
    assert len(lines) == 2, lines  # one per lockout, not one per refused bind
    assert any("kind=smpp_bind source=127.0.0.3" in line for line in lines), lines
    assert any(f"kind=smpp_bind system_id={APP}" in line for line in lines), lines
    assert (by_source(), by_id()) == (source_before + 1, id_before + 1)
    # Never the passwords, tried or real, in the log.
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "guess" not in text and PASSWORD not in text


async def test_guesses_spread_over_addresses_lock_the_system_id(tmp_path: Path) -> None:
    async with running(tmp_path, auth_max_failures=4, auth_lockout=30) as gw:
        port = gw.upstream_server.port
        for i in range(4):  # one guess per address: no address reaches its limit
            assert (await bind(port, APP, "guess", source=f"127.0.1.{i + 1}"))[0] \
                == st.ESME_RBINDFAIL
        assert (await bind(port, APP, PASSWORD, source="127.0.1.9"))[0] == st.ESME_RBINDFAIL
        # Another system_id from a fresh address is unaffected.
        await gw.store.write(lambda c: upstream.create_account(
            c, system_id="billing", password_hash=hash_password("pw"), now=datetime.now(UTC)))
        assert (await bind(port, "billing", "pw", source="127.0.1.10"))[0] == st.ESME_ROK


async def test_an_unknown_system_id_looks_like_a_wrong_password(tmp_path: Path) -> None:
    async with running(tmp_path, auth_max_failures=1000) as gw:
        port = gw.upstream_server.port
        unknown: list[float] = []
        known: list[float] = []
        for _ in range(7):
            status, took = await bind(port, "nobody", "guess")
            assert status == st.ESME_RBINDFAIL
            unknown.append(took)
            status, took = await bind(port, APP, "guess")
            assert status == st.ESME_RBINDFAIL
            known.append(took)
        u, k = statistics.median(unknown), statistics.median(known)
        # Both pay the KDF (~25 ms and more under load); before, unknown was ~20x faster.
        assert u > 0.5 * k and k > 0.005, (unknown, known)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_a_bind_flood_neither_stalls_a_good_bind_nor_bloats(tmp_path: Path) -> None:
    # The per-source connection cap (smpp_max_connections_per_source, default 20) would
    # refuse most of this flood before any bind; raised here to test the bind throttling.
    async with running(tmp_path, auth_max_failures=100_000,
                       smpp_max_connections_per_source=500) as gw:
        port = gw.upstream_server.port
        assert (await bind(port, APP, PASSWORD, source="127.0.0.2"))[0] == st.ESME_ROK
        rss_before = rss_mb()
        flood = [asyncio.create_task(bind(port, APP, f"guess{i}", source="127.0.0.1"))
                 for i in range(200)]
        await asyncio.sleep(0.2)  # the flood is in: its binds wait for the KDF
        status, took = await bind(port, APP, PASSWORD, source="127.0.0.2")
        results = await asyncio.gather(*flood)
        grown = rss_mb() - rss_before
        assert status == st.ESME_ROK and took < 1.0, took
        assert all(s == st.ESME_RBINDFAIL for s, _ in results)
        # At most two scrypt computations (16 MiB each) at any time.
        assert grown < 60, f"RSS grew {grown:.0f} MB"
