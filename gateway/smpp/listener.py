"""The one place both SMPP listeners (the gateway's server for applications, the simulator)
are opened: TCP or TLS, with the limits a public listener needs against idle or hostile peers.

- `max_connections` / `max_per_source`: a connection over either cap is closed as soon as it
  is accepted, with one warning line (counted per source address, not per port).
- `bind_timeout`: a connection that has not bound within it is closed (sans-IO session).
- `pdu_read_timeout`: a PDU that does not complete within it (slow-loris) closes the session.
- `max_unanswered`: requests awaiting our answer per session; more are refused with
  ESME_RTHROTTLED (gateway/smpp/session.py says why not generic_nack).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from gateway.smpp.connection import SmppConnection
from gateway.smpp.session import SessionConfig

log = logging.getLogger("smsgw.smpp")


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    max_connections: int | None = 500
    max_per_source: int | None = 50
    bind_timeout: float = 30.0
    pdu_read_timeout: float | None = 30.0
    max_unanswered: int | None = 100

    def session_config(self, base: SessionConfig) -> SessionConfig:
        """`base` with this listener's per-session limits."""
        return dataclasses.replace(base, bind_timeout=self.bind_timeout,
                                   pdu_read_timeout=self.pdu_read_timeout,
                                   max_unanswered=self.max_unanswered)


class ConnectionGate:
    """Counts open connections, in total and per source address, for one listener."""

    def __init__(self, limits: ListenerLimits, name: str):
        self.limits = limits
        self.name = name
        self.total = 0
        self.by_source: Counter[str] = Counter()
        self.refused = 0

    def admit(self, source: str) -> str | None:
        """Count the connection in and return None, or return why it is refused."""
        lim = self.limits
        if lim.max_connections is not None and self.total >= lim.max_connections:
            reason = f"{self.total} connections open (max {lim.max_connections})"
        elif lim.max_per_source is not None and self.by_source[source] >= lim.max_per_source:
            reason = (f"{self.by_source[source]} connections open from {source} "
                      f"(max {lim.max_per_source} per source)")
        else:
            self.total += 1
            self.by_source[source] += 1
            return None
        self.refused += 1
        return reason

    def release(self, source: str) -> None:
        self.total -= 1
        self.by_source[source] -= 1
        if self.by_source[source] <= 0:
            del self.by_source[source]


async def start_listener(factory: Callable[[], SmppConnection], host: str, port: int, *,
                         limits: ListenerLimits, name: str,
                         tls: ssl.SSLContext | None = None) -> tuple[asyncio.Server,
                                                                     ConnectionGate]:
    """Listen on host:port (0 = a free port); each accepted connection passes the gate."""
    gate = ConnectionGate(limits, name)

    def make() -> SmppConnection:
        conn = factory()
        conn.gate = gate
        return conn

    loop = asyncio.get_running_loop()
    # A TLS handshake that never finishes is bounded like an unbound session.
    extra = {"ssl": tls, "ssl_handshake_timeout": limits.bind_timeout} if tls else {}
    server = await loop.create_server(make, host, port, **extra)
    return server, gate
