"""Both SMPP listeners — the simulator's and the gateway's server for applications — started
the same way, so every listener test runs against each, over real TCP (or TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from commands.pins import hash_password
from gateway.auth_throttle import AuthLimits
from gateway.smpp import codec
from gateway.smpp.codec import Pdu
from gateway.smpp.listener import ConnectionGate, ListenerLimits
from gateway.smpp_server import UpstreamServer
from simulator import Simulator, SimulatorConfig
from store import upstream
from store.store import Store

SYSTEM_ID, PASSWORD = "app1", "pw1"
KINDS = ["simulator", "upstream"]


@dataclass
class Listener:
    kind: str
    port: int
    gate: ConnectionGate
    system_id: str = SYSTEM_ID
    password: str = PASSWORD
    extra: dict[str, Any] = field(default_factory=dict)


ListenerFactory = Callable[..., contextlib.AbstractAsyncContextManager[Listener]]


@pytest.fixture(params=KINDS)
def open_listener(request: pytest.FixtureRequest, tmp_path: Path) -> ListenerFactory:
    """`async with open_listener(limits, tls=ctx) as lst:` starts the parametrised listener."""
    kind = request.param

    @contextlib.asynccontextmanager
    async def start(limits: ListenerLimits | None = None,
                    tls: tuple[str, str] | None = None) -> AsyncIterator[Listener]:
        limits = limits or ListenerLimits()
        if kind == "simulator":
            sim = Simulator(SimulatorConfig(
                port=0, control_port=None, accounts={SYSTEM_ID: PASSWORD},
                max_connections=limits.max_connections,
                max_connections_per_source=limits.max_per_source,
                bind_timeout=limits.bind_timeout, pdu_read_timeout=limits.pdu_read_timeout,
                max_unanswered=limits.max_unanswered,
                tls_cert=tls[0] if tls else None, tls_key=tls[1] if tls else None))
            await sim.start()
            try:
                assert sim.gate is not None
                yield Listener(kind, sim.port, sim.gate, extra={"sim": sim})
            finally:
                await sim.stop()
            return
        from gateway.tls import server_context

        store = Store.open(f"sqlite:///{tmp_path / 'listener.db'}")
        now = datetime.now(UTC)
        await store.write(lambda c: upstream.create_account(
            c, system_id=SYSTEM_ID, password_hash=hash_password(PASSWORD), now=now))
        # Bind throttling (gateway/bind_auth.py) has its own tests; here it would lock
        # the fuzzer's address out after its first few garbled binds.
        server = UpstreamServer(store, port=0, limits=limits,
                                tls=server_context(*tls) if tls else None,
                                auth_limits=AuthLimits(max_failures=1_000_000))
        await server.start()
        try:
            assert server.gate is not None
            yield Listener(kind, server.port, server.gate, extra={"server": server})
        finally:
            await server.stop()
            await store.close()

    return start


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A throwaway certificate for 127.0.0.1 / localhost, made by the openssl CLI."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return str(cert), str(key)


class RawClient:
    """An SMPP peer at the byte level: sends whatever it is told, reads whole PDUs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.seq = 0

    @classmethod
    async def open(cls, port: int, *, local: str | None = None,
                   tls: ssl.SSLContext | None = None) -> RawClient:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(local, 0) if local else None, ssl=tls,
            server_hostname="localhost" if tls else None)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def pdu(self, command: str, **params: Any) -> bytes:
        self.seq += 1
        return codec.encode(Pdu(command, self.seq, 0, params))

    async def read_pdu(self, timeout: float = 5.0) -> Pdu:
        header = await asyncio.wait_for(self.reader.readexactly(16), timeout)
        length = int.from_bytes(header[:4], "big")
        body = await asyncio.wait_for(self.reader.readexactly(length - 16), timeout)
        return codec.decode(header + body)

    async def bind(self, system_id: str = SYSTEM_ID, password: str = PASSWORD) -> Pdu:
        await self.send_raw(self.pdu("bind_transceiver", system_id=system_id,
                                     password=password, system_type="",
                                     interface_version=0x34, address_range=""))
        return await self.read_pdu(timeout=15.0)  # scrypt on a busy machine

    async def closed_within(self, timeout: float) -> bool:
        """True when the peer closes (EOF or reset) within `timeout`; data read is dropped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while (left := deadline - loop.time()) > 0:
                chunk = await asyncio.wait_for(self.reader.read(65536), left)
                if not chunk:
                    return True
        except TimeoutError:
            return False
        except (ConnectionError, ssl.SSLError):
            return True
        return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def submit_params(to: str = "8613800000077", text: bytes = b"hello") -> dict[str, Any]:
    return {"service_type": "", "source_addr_ton": 0, "source_addr_npi": 0,
            "source_addr": "10690", "dest_addr_ton": 1, "dest_addr_npi": 1,
            "destination_addr": to, "esm_class": 0, "protocol_id": 0, "priority_flag": 0,
            "schedule_delivery_time": "", "validity_period": "", "registered_delivery": 0,
            "replace_if_present_flag": 0, "data_coding": 0, "sm_default_msg_id": 0,
            "short_message": text}
