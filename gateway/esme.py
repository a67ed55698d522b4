"""The gateway's ESME side: keeps one transceiver bind to an SMSC up, whatever happens.

Connects, binds, and on any loss reconnects with exponential backoff and full jitter (so a
fleet of gateways does not reconnect in lockstep after an SMSC restart). While unbound the
dispatcher simply waits in `wait_bound()`; queued messages stay in the store meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.inbound_window import InboundWindow
from gateway.metrics import METRICS
from gateway.smpp import session as sm
from gateway.smpp import status as st
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import (
    BindError,
    ConnectionClosed,
    Reply,
    SmppConnection,
    connect,
)
from gateway.tls import client_context

log = logging.getLogger("smsgw.esme")

# (connection name, PDU, the SmppConnection it came on: its ack is tracked, gateway/mo_acks.py)
DeliverHandler = Callable[[str, Pdu, SmppConnection], Awaitable[Reply]]
# Called with (connection name, up) when the bind comes up or goes down (routing failover).
StateListener = Callable[[str, bool], None]
# Called with (connection name, response, request) for a response that came after its
# request timed out: a late submit_sm_resp still records what the SMSC accepted.
LateListener = Callable[[str, Pdu, sm.Pending], None]


@dataclass(frozen=True, slots=True)
class SmscEndpoint:
    name: str
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    tls: bool = False  # SMPP over TLS (gateway/tls.py)
    tls_ca: str | None = None
    tls_verify: bool = True


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [low, min(high, low * 2^attempt)]."""
    ceiling = min(high, low * (2 ** min(attempt, 30)))
    return rng.uniform(low, ceiling)


class EsmeClient:
    def __init__(self, endpoint: SmscEndpoint, on_deliver: DeliverHandler, *,
                 session_config: sm.SessionConfig, reconnect_min: float = 0.5,
                 reconnect_max: float = 30.0, seed: int | None = None):
        self.endpoint = endpoint
        self.on_deliver = on_deliver
        self.session_config = session_config
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._rng = random.Random(seed)
        self._bound = asyncio.Event()
        self._stopping = False
        self.connection: SmppConnection | None = None
        self.binds = 0  # successful binds since start (a reconnect count, for status/tests)
        self.inbound = InboundWindow()  # how full the SMSC keeps our deliver_sm window
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[StateListener] = []
        self._late_listeners: list[LateListener] = []
        # Built once: a bad CA file fails at start, not at every reconnect.
        self._tls = (client_context(endpoint.tls_ca, verify=endpoint.tls_verify)
                     if endpoint.tls else None)

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def bound(self) -> bool:
        return self.connection is not None and self.connection.bound

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"esme-{self.name}")

    def add_listener(self, listener: StateListener) -> None:
        """``listener(name, up)`` on every bind up / link down (the dispatcher's failover)."""
        self._listeners.append(listener)

    def add_late_listener(self, listener: LateListener) -> None:
        """``listener(name, response, request)`` for each late response (the dispatcher)."""
        self._late_listeners.append(listener)

    def _notify(self, up: bool) -> None:
        for listener in list(self._listeners):
            try:
                listener(self.name, up)
            except Exception:
                log.exception("conn=%s state listener failed", self.name)

    async def wait_bound(self) -> SmppConnection:
        while True:
            await self._bound.wait()
            conn = self.connection
            if conn is not None and conn.bound:
                return conn
            await asyncio.sleep(0)  # state is changing under us; look again

    async def stop(self) -> None:
        self._stopping = True
        if self.connection is not None:
            await self.connection.unbind()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- handler protocol for SmppConnection ------------------------------------------------------

    async def on_request(self, conn: SmppConnection, pdu: Pdu) -> Reply:
        if pdu.command in ("deliver_sm", "data_sm"):
            self.inbound.opened()
            try:
                return await self.on_deliver(self.name, pdu, conn)
            finally:
                self.inbound.closed()
        return Reply(st.ESME_RINVCMDID)

    def backlogged(self) -> bool:
        """The SMSC is holding deliver_sm for us (gateway/inbound_window.py)."""
        return self.inbound.backlogged()

    async def on_bind(self, conn: SmppConnection, event: sm.BindRequested) -> int:
        return st.ESME_RINVBNDSTS  # an ESME never accepts binds

    def on_late_response(self, conn: SmppConnection, pdu: Pdu, request: sm.Pending) -> None:
        for listener in list(self._late_listeners):
            try:
                listener(self.name, pdu, request)
            except Exception:
                log.exception("conn=%s late-response listener failed", self.name)

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        if conn is self.connection:
            was_bound = self._bound.is_set()
            self._bound.clear()
            METRICS.binds_up.labels(self.name).set(0)
            if was_bound:
                self._notify(False)

    # -- the reconnect loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        ep = self.endpoint
        while not self._stopping:
            try:
                conn = await connect(ep.host, ep.port, self, config=self.session_config,
                                     name=ep.name, tls=self._tls)
                self.connection = conn
                await conn.bind("bind_transceiver", ep.system_id, ep.password, ep.system_type)
            except BindError as exc:
                self.last_error = str(exc)
                log.error("conn=%s bind to %s:%d refused: %s", ep.name, ep.host, ep.port,
                          st.name(exc.status))
            except (TimeoutError, OSError, ConnectionClosed) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("conn=%s cannot reach %s:%d: %s", ep.name, ep.host, ep.port,
                            self.last_error)
            else:
                attempt = 0
                self.binds += 1
                self._bound.set()
                METRICS.binds_up.labels(ep.name).set(1)
                self._notify(True)
                reason = await conn.closed
                self.last_error = reason
                if not self._stopping:
                    log.warning("conn=%s link down: %s", ep.name, reason)
            if self._stopping:
                break
            delay = backoff_delay(attempt, self.reconnect_min, self.reconnect_max, self._rng)
            attempt += 1
            log.info("conn=%s reconnecting in %.2fs (attempt %d)", ep.name, delay, attempt)
            await asyncio.sleep(delay)
