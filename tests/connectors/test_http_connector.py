"""The HTTP provider connector against a small fake provider (a real HTTP server in a thread):
sending, the provider's receipt coming back through our endpoint, an MO pushed to us, and
failover between an SMPP and an HTTP connection. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.app import Gateway
from gateway.config import Settings
from gateway.connectors import Connector
from gateway.connectors.http import HttpConnector, parse_options
from gateway.esme import EsmeClient
from gateway.routing import ConnectionsFileError, parse_connections
from simulator.config import SimulatorConfig
from simulator.smsc import Simulator
from store import outbound

TOKEN = "provider-pushes-with-this"
KEY = "Bearer provider-key"


class FakeProvider:
    """POST /send {"to", "from", "text"} with our key → {"data": {"id": "P<n>"}}; then, like a
    real provider, it posts the receipt to our endpoint (when ``receipt_url`` is set)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.status = 200
        self.receipt_url: str | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Authorization") != KEY:
                    return self._answer(401, {"error": "bad key"})
                if outer.status != 200:
                    return self._answer(outer.status, {"error": "unavailable"})
                msg = json.loads(body)
                outer.sent.append(msg)
                pid = f"P{len(outer.sent)}"
                self._answer(200, {"data": {"id": pid}})
                if outer.receipt_url:
                    threading.Thread(target=outer._push_receipt, args=(pid,),
                                     daemon=True).start()

            def _answer(self, status: int, data: Any) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/send"

    def _push_receipt(self, pid: str) -> None:
        time.sleep(0.05)
        assert self.receipt_url is not None
        req = urllib.request.Request(
            self.receipt_url, data=json.dumps({"msg_id": pid, "state": "delivered"}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with contextlib.suppress(OSError):  # the gateway stopped meanwhile (test over)
            urllib.request.urlopen(req, timeout=10).read()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    p = FakeProvider()
    try:
        yield p
    finally:
        p.close()


def http_entry(provider: FakeProvider, **over: Any) -> dict[str, Any]:
    entry = {"name": "cloud", "kind": "http", "cost_per_part": 0.01, "options": {
        "url": provider.url, "headers": {"Authorization": KEY},
        "body": '{"to": "{to}", "from": "{from}", "text": "{text}"}',
        "id_path": "data.id", "inbound_token": TOKEN, "down_for": 30,
        "receipt": {"id": "msg_id", "status": "state"}}}
    entry.update(over)
    return entry


@asynccontextmanager
async def gateway(db_url: str, tmp_path: Path, entries: list[dict[str, Any]]
                  ) -> AsyncIterator[Gateway]:
    path = tmp_path / "connections.yaml"
    path.write_text(yaml.safe_dump({"connections": entries}))
    gw = Gateway(Settings(
        database_url=db_url, api_port=0, smpp_server_port=None, poll_interval=0.05,
        reconnect_min=0.05, reconnect_max=0.3, source_addr="10690", instance="conn-test",
        connections_file=str(path), rate_limit_messages=1000))
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def wait_until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return value


async def message(gw: Gateway, mt_id: int) -> dict[str, Any]:
    found = await gw.store.read(lambda c: outbound.get_message(c, mt_id))
    assert found is not None
    return found


async def test_message_reaches_provider_and_receipt_comes_back(
        db_url: str, tmp_path: Path, provider: FakeProvider) -> None:
    async with gateway(db_url, tmp_path, [http_entry(provider)]) as gw:
        assert isinstance(gw.client, HttpConnector) and isinstance(gw.client, Connector)
        provider.receipt_url = f"http://127.0.0.1:{gw.api_port}/connectors/cloud/receipts"
        mt_id = await gw.enqueue("8613800000001", 'Hello "world" 你好')
        found = await wait_until(lambda: _status_is(gw, mt_id, "delivered"))
        assert provider.sent == [{"to": "8613800000001", "from": "10690",
                                  "text": 'Hello "world" 你好'}]
        assert found["connection"] == "cloud" and found["cost_millis"] == 10
        assert found["parts_detail"][0]["smsc_message_id"].upper() == "P1"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}") as http:
            bad = await http.post("/connectors/cloud/receipts", json={"msg_id": "P1"},
                                  headers={"Authorization": "Bearer wrong"})
            assert bad.status_code == 401
            # An MO pushed by the provider goes through the same inbound handling (and its
            # answer goes back out through the provider).
            r = await http.post("/connectors/cloud/mo", headers={
                "Authorization": f"Bearer {TOKEN}"}, json={
                "from": "8613800000002", "to": "10690", "text": "HELP", "id": "MO-1"})
            assert r.status_code == 200, r.text
            again = await http.post("/connectors/cloud/mo", headers={
                "Authorization": f"Bearer {TOKEN}"}, json={
                "from": "8613800000002", "to": "10690", "text": "HELP", "id": "MO-1"})
            assert again.status_code == 200
        await wait_until(lambda: _sent_to(provider, "8613800000002"))
        mos = await gw.store.read(lambda c: c.exec_driver_sql(
            "SELECT count(*) FROM inbound_messages WHERE duplicate_of IS NULL AND "
            "connection = 'cloud'").scalar())
        assert mos == 1  # the provider's retry (same id) had no second effect


async def _status_is(gw: Gateway, mt_id: int, status: str) -> dict[str, Any] | None:
    found = await message(gw, mt_id)
    return found if found["status"] == status else None


async def _sent_to(provider: FakeProvider, phone: str) -> bool:
    return any(m["to"] == phone for m in provider.sent)


async def test_failover_from_http_to_smpp_and_back(
        db_url: str, tmp_path: Path, provider: FakeProvider) -> None:
    sim = Simulator(SimulatorConfig(port=0, control_port=None, receipt_delay=0.05,
                                    accounts={"smsgw": "secret"}))
    await sim.start()
    try:
        smpp = {"name": "smsc", "host": "127.0.0.1", "port": sim.port, "cost_per_part": 0.05,
                "password": "secret"}
        # HTTP is cheaper: preferred while up. The provider answers 503: it goes down and
        # the message fails over to the SMPP connection.
        provider.status = 503
        entries = [smpp, http_entry(provider, options={
            **http_entry(provider)["options"], "down_for": 0.5})]
        async with gateway(db_url, tmp_path, entries) as gw:
            assert isinstance(gw.clients[0], EsmeClient)
            await asyncio.wait_for(gw.clients[0].wait_bound(), 10)
            first = await gw.enqueue("8613800000003", "via smpp after the provider failed")
            found = await wait_until(lambda: _status_is(gw, first, "delivered"))
            assert found["connection"] == "smsc" and found["possibly_duplicate"]
            assert [m.text for m in sim.handset("8613800000003").inbox] == [
                "via smpp after the provider failed"]
            # The provider recovers: the cheaper HTTP connection carries the next one.
            provider.status = 200
            await wait_until(lambda: _up(gw.clients[1]))
            second = await gw.enqueue("8613800000004", "via http again")
            found = await wait_until(lambda: _status_is(gw, second, "submitted"))
            assert found["connection"] == "cloud"
            assert provider.sent[-1]["text"] == "via http again"
    finally:
        await sim.stop()


async def _up(c: Connector) -> bool:
    return c.bound


def test_http_options_and_kinds_are_checked() -> None:
    with pytest.raises(ConnectionsFileError, match=r"options\.url is required"):
        parse_options("x", {"method": "POST"})
    with pytest.raises(ConnectionsFileError, match="id_regex needs one group"):
        parse_options("x", {"url": "http://p", "id_regex": "ok"})
    specs = parse_connections([{"name": "h", "kind": "http", "options": {"url": "http://p"}}])
    assert specs[0].kind == "http" and specs[0].host == ""
    with pytest.raises(ConnectionsFileError, match="port is required"):
        parse_connections([{"name": "s", "host": "h"}])
    from gateway.connectors.registry import ConnectorContext, build

    with pytest.raises(ConnectionsFileError, match="unknown kind 'carrier-pigeon'"):
        build(parse_connections([{"name": "p", "kind": "carrier-pigeon"}])[0],
              ConnectorContext(inbound=None, settings=None))

