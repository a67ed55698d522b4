"""asyncio transport around the sans-IO `Session`: one class for ESME and SMSC sides.

The connection owns the socket and the timer; every protocol decision stays in `Session`.
Requests are awaited (`await conn.request(...)` returns the response PDU) and wait for a
window slot first, so a caller can never overrun the peer. Incoming requests are handed to a
`Handler` in their own task and answered when it returns: that is how the gateway commits an
MO before it sends deliver_sm_resp without stalling the read loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from gateway.smpp import codec
from gateway.smpp import session as sm
from gateway.smpp import status as st
from gateway.smpp.codec import Pdu

if TYPE_CHECKING:
    from gateway.smpp.listener import ConnectionGate

log = logging.getLogger("smsgw.smpp")
_ids = itertools.count(1)


class ConnectionClosed(Exception):
    pass


class ResponseTimeout(Exception):
    def __init__(self, pending: sm.Pending):
        super().__init__(f"no response to {pending.command} seq={pending.sequence}")
        self.pending = pending


class BindError(Exception):
    def __init__(self, status: int):
        super().__init__(f"bind refused: {st.name(status)}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = st.ESME_ROK
    params: dict[str, Any] | None = None


class Handler(Protocol):
    async def on_request(self, conn: SmppConnection, pdu: Pdu) -> Reply: ...

    async def on_bind(self, conn: SmppConnection, event: sm.BindRequested) -> int:
        """SMSC side: check credentials, return ESME_ROK or the refusal status."""
        ...

    def on_closed(self, conn: SmppConnection, reason: str) -> None: ...

    # Optional: `on_late_response(conn, pdu, request)` is called, when the handler has it,
    # for a response that arrived after its request timed out (`sm.LateResponse`), and
    # `on_alert_notification(conn, event)` for an `sm.AlertNotification` (never answered).


class SmppConnection(asyncio.Protocol):
    def __init__(self, role: sm.Role, handler: Handler, *, config: sm.SessionConfig | None = None,
                 name: str = "", local_system_id: str = "smsgw"):
        self.loop = asyncio.get_running_loop()
        self.id = next(_ids)
        self.name = name or f"{role.value}-{self.id}"
        self.session = sm.Session(role, config, now=self.loop.time())
        self.handler = handler
        self.local_system_id = local_system_id
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.closed: asyncio.Future[str] = self.loop.create_future()
        self._waiters: dict[int, asyncio.Future[Pdu]] = {}
        self._bind_waiter: asyncio.Future[None] | None = None
        self._unbind_waiter: asyncio.Future[None] | None = None
        self._window_waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_pending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.info: dict[str, Any] = {}  # application data (account, bind id, ...)
        # Set by gateway/smpp/listener.py: the connection caps of the listener it came on.
        self.gate: ConnectionGate | None = None
        self._admitted_from: str | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not isinstance-checked: uvloop's TCPTransport is not a subclass
        # of asyncio.Transport, though it has the same methods.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        if self.gate is not None:
            source = str(peer[0]) if peer else "?"
            refusal = self.gate.admit(source)
            if refusal is not None:
                log.warning("conn=%s refused peer=%s on %s: %s", self.name, self.peer,
                            self.gate.name, refusal)
                self.session.fail_all_pending()
                transport.abort()  # connection_lost → _shutdown
                return
            self._admitted_from = source
        log.info("conn=%s connected peer=%s role=%s", self.name, self.peer,
                 self.session.role.value)
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        events = self.session.receive_data(data, now=self.loop.time())
        self._dispatch(events)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed"
        self._shutdown(reason)

    # -- public API -------------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self.session.bound and not self.closed.done()

    async def bind(self, command: str, system_id: str, password: str,
                   system_type: str = "") -> None:
        self._bind_waiter = self.loop.create_future()
        self.session.bind(command, system_id=system_id, password=password,
                          system_type=system_type, now=self.loop.time())
        self._flush()
        await self._bind_waiter

    async def request(self, command: str, params: dict[str, Any] | None = None, *,
                      context: Any = None, timeout: float | None = None) -> Pdu:
        """Send a request when the window allows; return its response (maybe an error status)."""
        while True:
            if self.closed.done():
                raise ConnectionClosed(self.closed.result())
            try:
                seq = self.session.send_request(command, params, now=self.loop.time(),
                                                context=context, timeout=timeout)
                break
            except sm.WindowFull:
                waiter = self.loop.create_future()
                self._window_waiters.append(waiter)
                try:
                    await waiter
                except asyncio.CancelledError:
                    # Woken for a free slot but cancelled before taking it: pass the slot
                    # on, or the next waiter sleeps until some other response arrives.
                    if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                        self._wake_window()
                    raise
        fut: asyncio.Future[Pdu] = self.loop.create_future()
        self._waiters[seq] = fut
        self._flush()
        return await fut

    async def unbind(self, timeout: float = 5.0) -> None:
        """Graceful shutdown: unbind, wait for unbind_resp (bounded), close."""
        if self.closed.done():
            return
        if self.session.bound:
            self._unbind_waiter = self.loop.create_future()
            self.session.unbind(now=self.loop.time())
            self._flush()
            with contextlib.suppress(asyncio.TimeoutError, ConnectionClosed):
                await asyncio.wait_for(asyncio.shield(self._unbind_waiter), timeout)
        self.close("unbound")

    def close(self, reason: str = "closed") -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._flush_now()
            self.transport.close()
        self._shutdown(reason)

    # -- internals --------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Send what the session has queued, at the end of this loop iteration: every PDU
        produced meanwhile (a batch of responses released by one commit, say) leaves in one
        write, where one write per PDU cost a system call each."""
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_pending = False
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
        self._arm_timer()

    def _arm_timer(self) -> None:
        deadline = self.session.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self._dispatch(self.session.handle_timers(now=self.loop.time()))
        self._flush()

    def _wake_window(self) -> None:
        while self._window_waiters and self.session.window_free > 0:
            waiter = self._window_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _dispatch(self, events: list[sm.Event]) -> None:
        for ev in events:
            if isinstance(ev, sm.ResponseReceived):
                fut = self._waiters.pop(ev.request.sequence, None)
                if fut is not None and not fut.done():
                    fut.set_result(ev.pdu)
                self._wake_window()
            elif isinstance(ev, sm.ResponseTimedOut):
                fut = self._waiters.pop(ev.request.sequence, None)
                if fut is not None and not fut.done():
                    fut.set_exception(ResponseTimeout(ev.request))
                self._wake_window()
            elif isinstance(ev, sm.LateResponse):
                self._on_late_response(ev)
            elif isinstance(ev, sm.AlertNotification):
                log.info("conn=%s alert_notification seq=%d msisdn=%s ms_availability=%s",
                         self.name, ev.pdu.sequence, ev.msisdn,
                         "-" if ev.available is None else ev.available)
                self._call_optional("on_alert_notification", ev)
            elif isinstance(ev, sm.RequestReceived):
                self._spawn(self._answer(ev.pdu))
            elif isinstance(ev, sm.BindRequested):
                self._spawn(self._answer_bind(ev))
            elif isinstance(ev, sm.Bound):
                log.info("conn=%s bound state=%s peer_system_id=%s", self.name,
                         ev.state.value, ev.system_id)
                if self._bind_waiter is not None and not self._bind_waiter.done():
                    self._bind_waiter.set_result(None)
            elif isinstance(ev, sm.BindFailed):
                log.warning("conn=%s bind failed status=%s", self.name, st.name(ev.status))
                if self._bind_waiter is not None and not self._bind_waiter.done():
                    self._bind_waiter.set_exception(BindError(ev.status))
                self.close(f"bind failed: {st.name(ev.status)}")
            elif isinstance(ev, sm.Unbound):
                log.info("conn=%s unbound by=%s", self.name, "peer" if ev.by_peer else "us")
                if self._unbind_waiter is not None and not self._unbind_waiter.done():
                    self._unbind_waiter.set_result(None)
                self.close("unbound by peer" if ev.by_peer else "unbound")
            elif isinstance(ev, sm.LinkDead):
                log.warning("conn=%s link dead: %s", self.name, ev.reason)
                self.close(f"link dead: {ev.reason}")
            elif isinstance(ev, sm.ProtocolError):
                log.warning("conn=%s protocol error: %s", self.name, ev.reason)
                if ev.fatal:
                    self.close(f"protocol error: {ev.reason}")

    def _on_late_response(self, ev: sm.LateResponse) -> None:
        req = ev.request
        log.warning("conn=%s late %s seq=%d status=%s %.2fs after it was sent (timed out "
                    "at %.2fs)", self.name, ev.pdu.command, req.sequence,
                    st.name(ev.pdu.status), self.loop.time() - req.sent_at,
                    req.deadline - req.sent_at)
        self._call_optional("on_late_response", ev.pdu, req)

    def _call_optional(self, method: str, *args: Any) -> None:
        callback = getattr(self.handler, method, None)
        if callback is None:
            return
        try:
            callback(self, *args)
        except Exception:
            log.exception("conn=%s %s failed", self.name, method)

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, pdu: Pdu) -> None:
        try:
            reply = await self.handler.on_request(self, pdu)
        except Exception:
            log.exception("conn=%s handler failed for %s seq=%d", self.name, pdu.command,
                          pdu.sequence)
            # Not ESME_ROK: the peer keeps the message and redelivers it later.
            reply = Reply(st.ESME_RSYSERR)
        try:
            self.session.respond(pdu, reply.status, reply.params)
        except codec.CodecError:
            # A reply we cannot encode (say, a message_id over 64 octets) must still be
            # answered, or the peer waits for its response timeout.
            log.exception("conn=%s bad reply for %s seq=%d", self.name, pdu.command,
                          pdu.sequence)
            self.session.respond(pdu, st.ESME_RSYSERR)
        self._flush()

    async def _answer_bind(self, ev: sm.BindRequested) -> None:
        try:
            status = await self.handler.on_bind(self, ev)
        except Exception:
            log.exception("conn=%s bind check failed", self.name)
            status = st.ESME_RBINDFAIL
        if status == st.ESME_ROK:
            self.session.accept_bind(ev.pdu, self.local_system_id)
            log.info("conn=%s bound as %s system_id=%s peer=%s", self.name, ev.pdu.command,
                     ev.system_id, self.peer)
            self._flush()
        else:
            log.warning("conn=%s bind refused system_id=%s status=%s", self.name,
                        ev.system_id, st.name(status))
            self.session.reject_bind(ev.pdu, status, self.local_system_id)
            self.close(f"bind refused: {st.name(status)}")

    def _shutdown(self, reason: str) -> None:
        if self.closed.done():
            return
        self.closed.set_result(reason)
        if self.gate is not None and self._admitted_from is not None:
            self.gate.release(self._admitted_from)
            self._admitted_from = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.session.fail_all_pending()
        for fut in (*self._waiters.values(), self._bind_waiter, self._unbind_waiter,
                    *self._window_waiters):
            if fut is not None and not fut.done():
                fut.set_exception(ConnectionClosed(reason))
                fut.exception()  # mark retrieved: nobody may be awaiting it any more
        self._waiters.clear()
        self._window_waiters.clear()
        log.info("conn=%s closed: %s", self.name, reason)
        try:
            self.handler.on_closed(self, reason)
        except Exception:
            log.exception("conn=%s on_closed failed", self.name)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


async def connect(host: str, port: int, handler: Handler, *,
                  config: sm.SessionConfig | None = None, name: str = "",
                  connect_timeout: float = 10.0,
                  tls: ssl.SSLContext | None = None) -> SmppConnection:
    """Open a TCP (or, with `tls`, TLS) connection as an ESME (not yet bound). The TLS
    handshake counts against `connect_timeout`."""
    loop = asyncio.get_running_loop()
    extra: dict[str, Any] = {"ssl": tls, "server_hostname": host} if tls else {}
    _, proto = await asyncio.wait_for(
        loop.create_connection(lambda: SmppConnection(sm.Role.ESME, handler, config=config,
                                                      name=name), host, port, **extra),
        connect_timeout)
    return proto
