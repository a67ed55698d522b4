"""Outbound dispatcher: claims queued MTs in priority order and submits them over one bind.

Claims are durable ('sending' with this instance's name) so a crash leaves nothing in limbo:
on start `release_claims` puts them back. A submit_sm whose response never came is retried
once on a fresh sequence number and the message flagged possibly duplicated (protocol.md,
delivery rules); throttling puts the message back and pauses the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from gateway.esme import EsmeClient
from gateway.metrics import METRICS
from gateway.smpp import status as st
from gateway.smpp import text as smstext
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import ConnectionClosed, ResponseTimeout, SmppConnection
from store import outbound
from store.store import Store

log = logging.getLogger("smsgw.dispatcher")

# Our own status for "no response after the retry" (outside the SMPP range, kept in
# error_code so operators can filter on it).
NO_RESPONSE = 0x10000
THROTTLE_PAUSE_MIN = 0.2
THROTTLE_PAUSE_MAX = 10.0


def _now() -> datetime:
    return datetime.now(UTC)


class _Requeue(Exception):
    """The message goes back to the queue (throttled, or the bind was lost)."""

    def __init__(self, reason: str, *, sent: bool, throttled: bool = False):
        super().__init__(reason)
        self.sent = sent
        self.throttled = throttled


class Dispatcher:
    def __init__(self, store: Store, client: EsmeClient, *, instance: str, source_addr: str,
                 batch: int = 50, poll_interval: float = 0.5):
        self.store = store
        self.client = client
        self.instance = instance
        self.source_addr = source_addr
        self.batch = batch
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._refs: dict[str, int] = {}
        self._throttle_pause = 0.0
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _next_ref(self, dest: str) -> int:
        # The concatenation reference rotates per destination, so two long messages to one
        # handset are never mixed up by its reassembly (3GPP TS 23.040 §9.2.3.24.1).
        ref = (self._refs.get(dest, -1) + 1) % 256
        self._refs[dest] = ref
        return ref

    async def run(self) -> None:
        while True:
            conn = await self.client.wait_bound()
            rows = await self.store.write(self._claim)
            if not rows:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                continue
            # Tasks are created in claim order and each waits its turn for a window slot
            # (FIFO), so the stream leaves in priority order.
            results = await asyncio.gather(*(self._send(conn, row) for row in rows),
                                           return_exceptions=True)
            for row, result in zip(rows, results, strict=True):
                if isinstance(result, BaseException) and not isinstance(result, _Requeue):
                    log.error("mt=%d send crashed: %r", row.id, result)
            if self._throttle_pause:
                await asyncio.sleep(self._throttle_pause)

    def _claim(self, c: Any) -> list[Any]:
        return outbound.claim_batch(c, instance=self.instance, connection=self.client.name,
                                    now=_now(), limit=self.batch)

    async def _send(self, conn: SmppConnection, row: Any) -> None:
        try:
            await self._submit_parts(conn, row)
        except _Requeue as exc:
            sent, detail = exc.sent, str(exc)
            await self.store.write(lambda c: outbound.requeue(
                c, [row.id], now=_now(), possibly_duplicate=sent, detail=detail))
            log.info("mt=%d requeued: %s", row.id, exc)
            if exc.throttled:
                self._throttle_pause = min(THROTTLE_PAUSE_MAX,
                                           max(THROTTLE_PAUSE_MIN, self._throttle_pause * 2))
            raise
        except Exception as exc:
            detail = f"error: {exc!r}"
            await self.store.write(lambda c: outbound.requeue(
                c, [row.id], now=_now(), possibly_duplicate=True, detail=detail))
            raise

    async def _submit_parts(self, conn: SmppConnection, row: Any) -> None:
        split = smstext.split_text(row.text, ref=self._next_ref(row.dest_addr))
        parts = len(split.parts)
        for part_no, payload in enumerate(split.parts, start=1):
            params = {
                "source_addr": row.source_addr or self.source_addr,
                "destination_addr": row.dest_addr,
                "esm_class": split.esm_class,
                "data_coding": split.data_coding,
                "short_message": payload,
                "registered_delivery": 1 if row.registered_delivery else 0,
            }
            resp = await self._submit(conn, params, row.id, part_no, sent_before=part_no > 1)
            if resp.status in (st.ESME_RTHROTTLED, st.ESME_RMSGQFUL):
                raise _Requeue(f"SMSC said {st.name(resp.status)}", sent=part_no > 1,
                               throttled=True)
            if resp.status != st.ESME_ROK:
                await self.store.write(lambda c, s=resp.status: outbound.mark_failed(
                    c, row.id, error_code=s, error_text=_describe(s), now=_now()))
                METRICS.messages_out.labels("failed").inc()
                log.warning("mt=%d part %d/%d refused: %s", row.id, part_no, parts,
                            st.name(resp.status))
                return
            self._throttle_pause = 0.0
            smsc_id = str(resp.get("message_id", ""))
            await self.store.write(lambda c, p=part_no, i=smsc_id: outbound.mark_part_submitted(
                c, message_id=row.id, part_no=p, parts=parts, smsc_message_id=i, now=_now()))
            log.info("mt=%d part %d/%d submitted smsc_id=%s to=%s conn=%s", row.id, part_no,
                     parts, smsc_id, row.dest_addr, conn.name)
        METRICS.messages_out.labels("submitted").inc()

    async def _submit(self, conn: SmppConnection, params: dict[str, Any], message_id: int,
                      part_no: int, *, sent_before: bool) -> Pdu:
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                resp = await conn.request("submit_sm", params, context=(message_id, part_no))
            except ResponseTimeout:
                if attempt == 2:
                    # Retried once already (protocol.md): fail it, keep the reason; the
                    # message may well have reached the SMSC, so it is not sent a third time.
                    log.error("mt=%d part %d: no submit_sm_resp after the retry", message_id,
                              part_no)
                    return Pdu("generic_nack", 0, NO_RESPONSE)
                log.warning("mt=%d part %d: no submit_sm_resp, retrying once on a fresh "
                            "sequence (possibly duplicated)", message_id, part_no)
                await self.store.write(lambda c: outbound.flag_possible_duplicate(
                    c, message_id, now=_now()))
                continue
            except ConnectionClosed as exc:
                raise _Requeue(f"bind lost: {exc}", sent=sent_before or attempt == 2) from exc
            METRICS.submit_latency.observe(time.perf_counter() - started)
            return resp
        raise AssertionError("unreachable")  # the loop returns or raises


def _describe(status: int) -> str:
    return "no submit_sm_resp after one retry" if status == NO_RESPONSE else st.name(status)
