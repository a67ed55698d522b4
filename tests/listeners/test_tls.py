"""SMPP over TLS with a self-signed certificate made in the test: both listeners accept TLS
clients, and the gateway binds over TLS to the simulator over TLS and a message goes through."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import Settings
from gateway.smpp import status as st
from gateway.tls import TlsConfigError, client_context, server_context
from simulator import Simulator, SimulatorConfig
from tests.listeners.conftest import ListenerFactory, RawClient

pytestmark = pytest.mark.timeout(60)


async def test_listener_accepts_tls_client(open_listener: ListenerFactory,
                                           self_signed: tuple[str, str]) -> None:
    cert, _ = self_signed
    async with open_listener(tls=self_signed) as lst:
        app = await RawClient.open(lst.port, tls=client_context(cert))
        assert app.writer.get_extra_info("ssl_object") is not None
        assert (await app.bind()).status == st.ESME_ROK
        await app.send_raw(app.pdu("enquire_link"))
        assert (await app.read_pdu()).command == "enquire_link_resp"
        await app.close()
        # A plain-TCP client gets no SMPP session on a TLS listener.
        plain = await RawClient.open(lst.port)
        await plain.send_raw(plain.pdu("enquire_link"))
        assert await plain.closed_within(5.0)
        await plain.close()


async def test_certificate_is_verified_by_default(open_listener: ListenerFactory,
                                                  self_signed: tuple[str, str]) -> None:
    async with open_listener(tls=self_signed) as lst:
        with pytest.raises(ssl.SSLCertVerificationError):
            await RawClient.open(lst.port, tls=client_context())  # system CAs only
        unverified = await RawClient.open(lst.port, tls=client_context(verify=False))
        assert (await unverified.bind()).status == st.ESME_ROK
        await unverified.close()


async def test_gateway_binds_over_tls_and_delivers(tmp_path: Path,
                                                   self_signed: tuple[str, str]) -> None:
    cert, key = self_signed
    async with Simulator(SimulatorConfig(port=0, control_port=None, receipt_delay=0.05,
                                         accounts={"smsgw": "secret"},
                                         tls_cert=cert, tls_key=key)) as sim:
        gw = Gateway(Settings(
            database_url=f"sqlite:///{tmp_path / 'tls.db'}", smsc_host="127.0.0.1",
            smsc_port=sim.port, smsc_tls=True, smsc_tls_ca=cert, api_port=0,
            smpp_server_port=0, smpp_server_tls_cert=cert, smpp_server_tls_key=key,
            poll_interval=0.05, instance="tls-test"))
        await gw.start(api=False)
        try:
            await asyncio.wait_for(gw.client.wait_bound(), 15)
            conn = gw.client.connection
            assert conn is not None and conn.transport is not None
            assert conn.transport.get_extra_info("ssl_object") is not None
            mt_id = await gw.enqueue("8613800000088", "over TLS")
            inbox = await sim.wait_for_inbox("8613800000088", 1, timeout=15)
            assert [m.text for m in inbox] == ["over TLS"]
            assert mt_id > 0
            # The gateway's own SMPP server speaks TLS too.
            assert gw.upstream_server is not None and gw.upstream_server.tls is not None
            app = await RawClient.open(gw.upstream_server.port, tls=client_context(cert))
            resp = await app.bind("nobody", "x")  # TLS works; the account does not exist
            assert resp.command == "bind_transceiver_resp" and resp.status != st.ESME_ROK
            await app.close()
        finally:
            await gw.stop()


def test_bad_tls_files_fail_with_the_file_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(TlsConfigError, match=r"nope\.pem"):
        server_context(missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(TlsConfigError, match=r"garbage\.pem"):
        client_context(str(garbage))
