"""Serve an ASGI app inside the running event loop (admin API, simulator control API).

uvicorn's `Server.serve()` takes over SIGINT/SIGTERM and calls sys.exit() inside its task
when it cannot bind. Embedded in a process that owns its signals (graceful SMPP unbind) both
are wrong, so the socket is bound here (a clear OSError) and signal capture is switched off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

log = logging.getLogger("smsgw.http")


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        pass


class EmbeddedHttpServer:
    def __init__(self, app: Any, host: str, port: int, *, name: str = "HTTP API",
                 trusted_proxies: str | None = None):
        self.app = app
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
                                forwarded_allow_ips=self.trusted_proxies)
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
