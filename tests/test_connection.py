"""SmppConnection over real loopback TCP: an SMSC-role server and an ESME client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from gateway.smpp import codec
from gateway.smpp import session as sm
from gateway.smpp import status as st
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import (
    BindError,
    ConnectionClosed,
    Reply,
    ResponseTimeout,
    SmppConnection,
    connect,
)

SUBMIT = {"source_addr": "Shop", "destination_addr": "4915112345678", "short_message": b"hi"}
T = 5.0  # upper bound for anything that should happen promptly


class ServerHandler:
    """Accepts system_id 'test' / password 'secret'; answers submit_sm with a message_id."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.outstanding = 0
        self.max_outstanding = 0
        self.requests: list[Pdu] = []
        self.closed: list[str] = []
        self.block = asyncio.Event()
        self.blocking = False
        self.entered = asyncio.Event()

    async def on_bind(self, conn: SmppConnection, event: sm.BindRequested) -> int:
        if event.system_id != "test":
            return st.ESME_RINVSYSID
        if event.password != "secret":
            return st.ESME_RINVPASWD
        return st.ESME_ROK

    async def on_request(self, conn: SmppConnection, pdu: Pdu) -> Reply:
        self.requests.append(pdu)
        number = len(self.requests)
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        try:
            self.entered.set()
            if self.blocking:
                await self.block.wait()
            await asyncio.sleep(self.delay)
        finally:
            self.outstanding -= 1
        if pdu.command != "submit_sm":
            return Reply(st.ESME_RINVCMDID)
        if pdu.params.get("short_message") == b"bad-id":
            return Reply(params={"message_id": "x" * 100})  # cannot be encoded
        return Reply(params={"message_id": f"msg-{number}"})

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        self.closed.append(reason)


class ClientHandler:
    def __init__(self) -> None:
        self.closed: list[str] = []

    async def on_bind(self, conn: SmppConnection, event: sm.BindRequested) -> int:
        return st.ESME_RINVBNDSTS

    async def on_request(self, conn: SmppConnection, pdu: Pdu) -> Reply:
        return Reply(params={"message_id": ""})

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        self.closed.append(reason)


@dataclass
class Smsc:
    handler: ServerHandler
    port: int
    conns: list[SmppConnection] = field(default_factory=list)


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    loop = asyncio.get_running_loop()
    handler = ServerHandler()
    conns: list[SmppConnection] = []

    def factory() -> SmppConnection:
        conn = SmppConnection(sm.Role.SMSC, handler, local_system_id="SMSC",
                              config=sm.SessionConfig(window=10))
        conns.append(conn)
        return conn

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Smsc(handler, port, conns)
    finally:
        for conn in conns:
            conn.close("test over")
        server.close()
        await server.wait_closed()


async def _client(smsc: Smsc, **cfg: float) -> tuple[SmppConnection, ClientHandler]:
    handler = ClientHandler()
    conn = await connect("127.0.0.1", smsc.port, handler, config=sm.SessionConfig(**cfg))
    return conn, handler


async def _bound_client(smsc: Smsc, **cfg: float) -> tuple[SmppConnection, ClientHandler]:
    conn, handler = await _client(smsc, **cfg)
    await asyncio.wait_for(conn.bind("bind_transceiver", "test", "secret"), T)
    return conn, handler


async def test_bind_and_submit(smsc: Smsc) -> None:
    conn, _ = await _bound_client(smsc)
    assert conn.bound
    assert conn.session.state is sm.State.BOUND_TRX
    assert conn.session.peer_system_id == "SMSC"
    resp = await asyncio.wait_for(conn.request("submit_sm", SUBMIT), T)
    assert (resp.command, resp.status) == ("submit_sm_resp", st.ESME_ROK)
    assert resp.params["message_id"] == "msg-1"
    (seen,) = smsc.handler.requests
    assert seen.params["destination_addr"] == "4915112345678"
    assert seen.params["short_message"] == b"hi"
    assert smsc.conns[0].session.peer_system_id == "test"
    await conn.unbind()


async def test_error_status_is_returned_not_raised(smsc: Smsc) -> None:
    conn, _ = await _bound_client(smsc)
    resp = await asyncio.wait_for(
        conn.request("query_sm", {"message_id": "x", "source_addr": "Shop"}), T)
    assert (resp.command, resp.status) == ("query_sm_resp", st.ESME_RINVCMDID)
    await conn.unbind()


async def test_unencodable_reply_is_answered_with_syserr(smsc: Smsc) -> None:
    conn, _ = await _bound_client(smsc)
    resp = await asyncio.wait_for(
        conn.request("submit_sm", {**SUBMIT, "short_message": b"bad-id"}), T)
    assert (resp.command, resp.status) == ("submit_sm_resp", st.ESME_RSYSERR)
    await conn.unbind()


async def test_wrong_password(smsc: Smsc) -> None:
    conn, handler = await _client(smsc)
    with pytest.raises(BindError) as ei:
        await asyncio.wait_for(conn.bind("bind_transceiver", "test", "wrong"), T)
    assert ei.value.status == st.ESME_RINVPASWD
    assert await asyncio.wait_for(conn.closed, T)
    assert not conn.bound
    with pytest.raises(ConnectionClosed):
        await conn.request("submit_sm", SUBMIT)
    await asyncio.wait_for(smsc.conns[0].closed, T)
    assert handler.closed and smsc.handler.closed


async def test_window_limits_outstanding_requests(smsc: Smsc) -> None:
    smsc.handler.delay = 0.01
    conn, _ = await _bound_client(smsc, window=5)
    results = await asyncio.wait_for(
        asyncio.gather(*(conn.request("submit_sm", {**SUBMIT, "short_message": b"%d" % i},
                                      context=i) for i in range(50))), 30)
    assert len(results) == 50
    assert all(r.command == "submit_sm_resp" and r.status == st.ESME_ROK for r in results)
    assert len({r.params["message_id"] for r in results}) == 50
    assert smsc.handler.max_outstanding == 5
    assert len(smsc.handler.requests) == 50
    assert sorted(p.params["short_message"] for p in smsc.handler.requests) == sorted(
        b"%d" % i for i in range(50))
    assert conn.session.outstanding == 0
    await conn.unbind()


async def test_cancelled_window_waiter_does_not_strand_others(smsc: Smsc) -> None:
    smsc.handler.delay = 0.05
    conn, _ = await _bound_client(smsc, window=1)
    first = asyncio.create_task(conn.request("submit_sm", SUBMIT))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(conn.request("submit_sm", SUBMIT)) for _ in range(2)]
    await asyncio.sleep(0)
    assert len(conn._window_waiters) == 2
    # Cancel the first waiter right after the response that wakes it arrives, before its
    # task runs: the free slot must pass to the second waiter.
    (response_future,) = conn._waiters.values()
    response_future.add_done_callback(lambda _: waiting[0].cancel())
    await asyncio.wait_for(first, T)
    resp = await asyncio.wait_for(waiting[1], T)
    assert waiting[0].cancelled()
    assert resp.status == st.ESME_ROK
    await conn.unbind()


async def test_peer_close_fails_in_flight_requests(smsc: Smsc) -> None:
    smsc.handler.blocking = True
    conn, handler = await _bound_client(smsc, window=2)
    tasks = [asyncio.create_task(conn.request("submit_sm", SUBMIT)) for _ in range(4)]
    await asyncio.wait_for(smsc.handler.entered.wait(), T)
    await asyncio.sleep(0.05)
    assert conn.session.outstanding == 2  # two in flight, two waiting for the window
    smsc.conns[0].transport.close()  # the peer drops the socket without unbinding
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), T)
    assert all(isinstance(r, ConnectionClosed) for r in results), results
    assert conn.closed.done() and handler.closed
    assert not conn.bound


async def test_response_timeout(smsc: Smsc) -> None:
    smsc.handler.blocking = True
    conn, _ = await _bound_client(smsc)
    with pytest.raises(ResponseTimeout) as ei:
        await asyncio.wait_for(conn.request("submit_sm", SUBMIT, context="c1", timeout=0.2), T)
    assert ei.value.pending.context == "c1"
    assert conn.bound and conn.session.outstanding == 0
    smsc.handler.block.set()
    await conn.unbind()


async def test_enquire_link_keeps_idle_link_alive(smsc: Smsc) -> None:
    conn, _ = await _bound_client(smsc, enquire_link_interval=0.05, enquire_link_timeout=1)
    before = conn.session.sent_pdus
    await asyncio.sleep(0.4)
    assert conn.session.sent_pdus >= before + 3  # several enquire_links went out ...
    assert conn.bound  # ... and were answered
    assert smsc.handler.requests == []  # answered by the session, not the handler
    await conn.unbind()


async def test_unbind_closes_both_sides(smsc: Smsc) -> None:
    conn, handler = await _bound_client(smsc)
    await asyncio.wait_for(conn.unbind(), T)
    assert conn.closed.done() and conn.closed.result() == "unbound"
    server = smsc.conns[0]
    assert await asyncio.wait_for(server.closed, T) == "unbound by peer"
    assert conn.session.state is sm.State.CLOSED and server.session.state is sm.State.CLOSED
    assert handler.closed == ["unbound"] and smsc.handler.closed == ["unbound by peer"]
    with pytest.raises(ConnectionClosed):
        await conn.request("submit_sm", SUBMIT)
    await conn.unbind()  # idempotent


async def test_server_unbinds_client(smsc: Smsc) -> None:
    conn, _handler = await _bound_client(smsc)
    await asyncio.wait_for(smsc.conns[0].unbind(), T)
    assert await asyncio.wait_for(conn.closed, T) == "unbound by peer"
    assert smsc.conns[0].closed.result() == "unbound"


async def test_alert_notification_over_tcp_gets_no_answer(smsc: Smsc) -> None:
    alerts: list[sm.AlertNotification] = []

    class AlertClient(ClientHandler):
        def on_alert_notification(self, conn: SmppConnection, ev: sm.AlertNotification) -> None:
            alerts.append(ev)

    handler = AlertClient()
    conn = await connect("127.0.0.1", smsc.port, handler)
    await asyncio.wait_for(conn.bind("bind_transceiver", "test", "secret"), T)
    server = smsc.conns[-1]
    server_events: list[sm.Event] = []
    original = server.session.receive_data

    def spy(data: bytes, *, now: float) -> list[sm.Event]:
        events = original(data, now=now)
        server_events.extend(events)
        return events

    server.session.receive_data = spy  # type: ignore[method-assign]
    assert server.transport is not None
    server.transport.write(codec.encode(Pdu("alert_notification", 4242, 0, {
        "source_addr": "8613800000001", "esme_addr": "10690", "ms_availability_status": 0})))
    # Then a request that is answered: once its response is back, anything the client sent
    # for the alert would have arrived before it.
    resp = await asyncio.wait_for(conn.request("submit_sm", SUBMIT), T)
    assert resp.status == st.ESME_ROK
    assert [a.msisdn for a in alerts] == ["8613800000001"]
    assert not [e for e in server_events if isinstance(e, sm.ProtocolError)]  # no nack
    assert conn.bound
    await conn.unbind()
