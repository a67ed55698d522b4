"""Serve an ASGI app inside the running event loop (admin API, simulator control API).

uvicorn's `Server.serve()` takes over SIGINT/SIGTERM and calls sys.exit() inside its task
when it cannot bind. Embedded in a process that owns its signals (graceful SMPP unbind) both
are wrong, so the socket is bound here (a clear OSError) and signal capture is switched off.

Limits against clients that hold connections (`HttpLimits`): uvicorn has no timeout for a
request's headers, so a slow-header client (one octet every few seconds) was held forever.
`_HeaderTimeoutH11` closes a connection whose request headers are not complete within
`header_timeout` of its opening (or of the previous response); `limit_concurrency` answers
503 past `max_connections`; `timeout_keep_alive` closes idle keep-alive connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("smsgw.http")


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        pass


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_connections: int = 100  # uvicorn limit_concurrency: more get 503
    header_timeout: float = 10.0  # request line + headers must arrive within this
    keep_alive_timeout: int = 5  # idle keep-alive connections are closed after this
    max_header_size: int = 16 * 1024  # h11_max_incomplete_event_size (431 past it)


class _HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request's headers."""

    header_timeout = 10.0
    server_name = "HTTP API"
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a whole request line + headers came
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the next request's headers get the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._on_header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.warning("%s: closed connection from %s: no complete request headers within %gs",
                    self.server_name, peer, self.header_timeout)
        self.transport.close()


def _protocol_class(limits: HttpLimits, name: str) -> type[H11Protocol]:
    return type("HeaderTimeoutH11", (_HeaderTimeoutH11,),
                {"header_timeout": limits.header_timeout, "server_name": name})


class EmbeddedHttpServer:
    def __init__(self, app: Any, host: str, port: int, *, name: str = "HTTP API",
                 trusted_proxies: str | None = None, limits: HttpLimits | None = None):
        self.app = app
        self.limits = limits or HttpLimits()
        # X-Forwarded-For is believed only from these addresses (comma-separated). uvicorn's
        # default believes any loopback peer, so through a reverse proxy that passes the
        # client's own header on, anyone could pick their source address (and dodge the
        # per-source throttling of wrong API keys).
        self.trusted_proxies = trusted_proxies or None
        self.host = host
        self.port = port
        self.name = name
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind (OSError if the port is taken), start serving, return the bound port."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"{self.name} cannot listen on {self.host}:{self.port}: "
                                     f"{exc.strerror}") from None
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_config=None, log_level="warning",
                                lifespan="off", access_log=False,
                                proxy_headers=self.trusted_proxies is not None,
                                forwarded_allow_ips=self.trusted_proxies,
                                http=_protocol_class(self.limits, self.name),
                                limit_concurrency=self.limits.max_connections,
                                timeout_keep_alive=self.limits.keep_alive_timeout,
                                h11_max_incomplete_event_size=self.limits.max_header_size)
        self._server = _EmbeddedServer(config)
        self._task = asyncio.get_running_loop().create_task(self._serve(sock))
        while not self._server.started:
            if self._task.done():
                raise RuntimeError(f"{self.name} failed to start")
            await asyncio.sleep(0.01)
        self.port = port
        return port

    async def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            await self._server.serve(sockets=[sock])
        except SystemExit:  # uvicorn exits on start-up errors; never kill the host loop
            log.error("%s stopped during start-up", self.name)
        finally:
            sock.close()

    async def stop(self, timeout: float = 3.0) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._server = self._task = None
