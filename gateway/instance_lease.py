"""Each instance's heartbeat lease, and the take-over of a dead instance's claims.

Every instance renews the lease "instance:<SMSGW_INSTANCE>" every `interval` seconds for
`ttl` seconds (store.leases). An instance that dies stops renewing; once its lease lapses any
live instance puts the messages it had claimed ('sending') back in the queue, flagged
possibly duplicated (they may have reached the SMSC), exactly as the dead instance would have
done on its own restart (store.outbound.release_claims). Without this a dead instance that
never comes back would leave its in-flight messages stuck.

The lease also catches a misconfiguration: two live processes with the same SMSGW_INSTANCE
(one would take the other's claims on restart); the second is told so in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from store import leases, outbound
from store.store import Store

log = logging.getLogger("smsgw.instances")

PREFIX = "instance:"


class InstanceLease:
    def __init__(self, store: Store, instance: str, *, ttl: float = 120.0,
                 interval: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.instance = instance
        self.holder = f"{instance}#{uuid.uuid4().hex[:12]}"  # this process
        self.ttl = ttl
        self.interval = interval
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._conflict_logged = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="instance-lease")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(Exception):  # a restart may take the name at once
            await self.store.write(lambda c: leases.release(c, PREFIX + self.instance,
                                                            self.holder, now=self.clock()))

    async def tick(self) -> int:
        """Renew this instance's lease; release the claims of lapsed ones. Returns how many
        messages were put back in the queue."""
        return await self.store.write(self._tick)

    def _tick(self, conn: Connection) -> int:
        now = self.clock()
        mine = leases.acquire(conn, PREFIX + self.instance, self.holder, now=now, ttl=self.ttl)
        if not mine and not self._conflict_logged:
            log.error("another live process runs as instance %r: give each instance its "
                      "own SMSGW_INSTANCE", self.instance)
            self._conflict_logged = True
        released = 0
        for name in leases.lapsed(conn, PREFIX, now=now):
            dead = name[len(PREFIX):]
            if dead == self.instance or not leases.try_xact_lock(conn, f"reap:{name}"):
                continue
            n = outbound.release_claims(conn, instance=dead, now=datetime.now(UTC))
            leases.drop_lapsed(conn, name, now=now)
            log.warning("instance %s stopped renewing its lease: %d message(s) it had "
                        "claimed put back in the queue (flagged possibly duplicated)", dead, n)
            released += n
        return released

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("instance lease renewal failed; retrying")
            await asyncio.sleep(self.interval)
