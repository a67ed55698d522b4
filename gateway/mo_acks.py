"""Which MO acks surely reached the SMSC: the half of the redelivery rule that needs a clock.

An SMSC sends a deliver_sm again only when it did not get our deliver_sm_resp (SMPP 3.4
§4.6: it keeps the message until acknowledged). Our ack is written on a session; if that
session then stays up longer than the SMSC's response timeout, the SMSC either read the ack
or would have given up on the session itself, so it will not redeliver, and an identical MO
afterwards is a person sending the same text again. If the session dropped first, the
gateway crashed, or our ack left later than the SMSC's timeout, the ack may be lost: an
identical MO is taken as a redelivery (gateway/inbound.py, store.inbound.store_mo).

The tracker keeps recent acks in memory and confirms the due ones in batched UPDATEs through
the writer (`ack_confirmed`). A crash forgets the list, which is the safe direction: those
acks stay unconfirmed. Each instance confirms only the acks of its own sessions, so several
instances on one database need nothing shared but the rows.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from store import inbound
from store.store import Store

log = logging.getLogger("smsgw.inbound")

_process_token = f"{os.getpid():x}.{int(time.time()):x}"  # sessions of a restart never match


@dataclass(slots=True)
class _Ack:
    mo_id: int
    session: Any  # gateway.smpp.connection.SmppConnection (anything with .closed, .id, .name)
    arrived: float  # when the deliver_sm arrived (monotonic)
    acked: float  # when our deliver_sm_resp left


class AckTracker:
    def __init__(self, store: Store, *, peer_timeout: float, instance: str = "smsgw",
                 clock: Callable[[], float] = time.monotonic, interval: float | None = None):
        self.store = store
        self.peer_timeout = peer_timeout
        self.instance = instance
        self.clock = clock
        self.interval = interval if interval is not None else min(1.0, peer_timeout / 4)
        self._pending: deque[_Ack] = deque()  # acked order = due order
        self._closed_at: dict[int, float] = {}  # session id -> when it closed
        self._watched: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._keys: dict[int, str] = {}
        self._serial = itertools.count(1)

    def session_key(self, session: Any) -> str:
        """A name for a session, unique across instances and restarts (stored with the MO)."""
        key = self._keys.get(session.id)
        if key is None:
            key = f"{self.instance}/{session.name}#{session.id}/{_process_token}"
            self._keys[session.id] = key
        return key

    def acked(self, mo_id: int, session: Any, arrived: float) -> None:
        """Our deliver_sm_resp for `mo_id` is being written on `session` now."""
        if session.id not in self._watched:
            self._watched.add(session.id)
            session.closed.add_done_callback(
                lambda _f, sid=session.id: self._closed_at.setdefault(sid, self.clock()))
        self._pending.append(_Ack(mo_id, session, arrived, self.clock()))

    def due(self) -> list[int]:
        """MO ids whose ack is now known to have reached the SMSC; forgets every due entry."""
        now = self.clock()
        confirmed: list[int] = []
        while self._pending and now - self._pending[0].acked >= self.peer_timeout:
            ack = self._pending.popleft()
            closed = self._closed_at.get(ack.session.id)
            prompt = ack.acked - ack.arrived < self.peer_timeout
            outlived = closed is None or closed - ack.acked >= self.peer_timeout
            if prompt and outlived:
                confirmed.append(ack.mo_id)
            else:
                log.info("mo=%d ack not confirmed (session %s): an identical MO will be "
                         "taken as its redelivery", ack.mo_id,
                         "answered late" if not prompt else "dropped")
        live = {a.session.id for a in self._pending}
        for sid in [s for s in self._closed_at if s not in live]:
            self._closed_at.pop(sid, None)
            self._watched.discard(sid)
            self._keys.pop(sid, None)
        return confirmed

    async def confirm_due(self) -> int:
        ids = self.due()
        if ids:
            await self.store.write(lambda c: inbound.confirm_acks(c, ids))
        return len(ids)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mo-acks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.confirm_due()
            except Exception:  # a store hiccup: those acks stay unconfirmed (the safe side)
                log.exception("confirming MO acks failed")
