"""Receipt deadline: a part whose delivery receipt has not come is followed up, then settled.

An SMSC that restarts, or loses a receipt, leaves a message `submitted` forever. So:
  1. a part still without its receipt SMSGW_RECEIPT_DEADLINE seconds (default 48 h) after
     its submit_sm_resp is asked about with query_sm (SMPP 3.4 §4.8) on the connection that
     carried it; a final answer (DELIVERED, UNDELIVERABLE, EXPIRED, ...) is applied like a
     receipt (status history "query_sm part 1/1: delivered ...");
  2. still unknown SMSGW_RECEIPT_GRACE seconds (default 1 h) later — query_sm said ENROUTE
     or UNKNOWN, failed (ESME_RINVMSGID, ESME_RINVCMDID: an SMSC without query_sm), timed
     out, or the connection was down — the part is final `unknown` ("deadline part 1/1:
     unknown"), and the message `unknown` once every part is final. An upstream application
     that asked for a receipt gets one (stat UNKNOWN). A receipt arriving later still makes
     it `delivered`.
Every follow-up is one log line with the ids. Several instances may run it: marking a part
queried, and applying a state, are conditional updates, so each happens once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Connection, Row

from gateway.periodic import Periodic
from gateway.smpp import status as st
from gateway.smpp import text as smstext
from gateway.smpp.connection import SmppConnection
from store import outbound, receipts, upstream
from store.models import outbound_parts as part
from store.store import Store

log = logging.getLogger("smsgw.receipts")

PAGE = 200
QUERY_TIMEOUT = 10.0  # seconds for one query_sm_resp


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ReceiptFollowUp(Periodic):
    name = "receipt-followup"
    log = log

    def __init__(self, store: Store, connection: Callable[[str], SmppConnection | None], *,
                 deadline: float, grace: float, interval: float, default_source: str,
                 on_final: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.store = store
        self.connection = connection  # a bound connection by name, or None
        self.deadline = timedelta(seconds=deadline)
        self.grace = timedelta(seconds=grace)
        self.interval = interval
        self.default_source = default_source
        self.on_final = on_final  # e.g. wake the upstream server: a receipt may be owed
        self.clock = clock

    async def tick(self) -> tuple[int, int]:
        """One pass: (parts followed up with query_sm, parts given up as unknown)."""
        now = self.clock()
        overdue = await self.store.read(lambda c: outbound.parts_awaiting_receipt(
            c, submitted_before=now - self.deadline, queried=False, limit=PAGE))
        for row in overdue:
            await self._follow_up(row)
        return len(overdue), await self._give_up(self.clock())

    async def _follow_up(self, row: Row) -> None:
        state, why = await self._query(row)
        now = self.clock()

        def apply(c: Connection) -> str | None:
            if not outbound.mark_part_queried(c, row.id, now=now):
                return None  # its receipt came meanwhile, or another instance asked
            if state is None:
                return None
            status = receipts.apply_to_part(c, row, state=state, error_code=None, now=now,
                                            source="query_sm")
            upstream.owe_receipt(c, row.message_id, now=now)
            return status

        status = await self.store.write(apply)
        if status is not None:
            log.info("mt=%d part %d no receipt by the deadline; query_sm smsc_id=%s: %s "
                     "(message %s)", row.message_id, row.part_no, row.smsc_message_id,
                     state, status)
            self.on_final()
        else:
            log.warning("mt=%d part %d no receipt by the deadline; query_sm smsc_id=%s "
                        "conn=%s: %s; final unknown in %gs unless a receipt comes",
                        row.message_id, row.part_no, row.smsc_message_id, row.connection,
                        why, self.grace.total_seconds())

    async def _query(self, row: Row) -> tuple[str | None, str]:
        """(final part state, or None with why not) from query_sm."""
        conn = self.connection(row.connection or "")
        if conn is None:
            return None, "connection not bound"
        try:
            resp = await conn.request("query_sm", {
                "message_id": row.smsc_message_id,
                "source_addr": row.source_addr or self.default_source},
                timeout=QUERY_TIMEOUT)
        except Exception as exc:  # timeout, connection closed: unknown for now
            return None, f"no answer ({type(exc).__name__})"
        if resp.status != st.ESME_ROK:
            return None, f"refused {st.name(resp.status)}"
        stat = smstext.MESSAGE_STATE_STAT.get(resp.get("message_state", 0), "UNKNOWN")
        state = receipts.RECEIPT_STATES.get(stat)
        if state is None or state == "unknown":
            return None, f"message_state {stat}"
        return state, stat

    async def _give_up(self, now: datetime) -> int:
        total = 0
        while True:
            stale = await self.store.read(lambda c: outbound.parts_awaiting_receipt(
                c, submitted_before=now - self.grace, queried=True, limit=PAGE))
            if not stale:
                return total

            def settle(c: Connection, rows: list[Row] = stale) -> list[tuple[Row, str]]:
                done = []
                for r in rows:
                    still = c.execute(part.select().where(
                        part.c.id == r.id, part.c.status == "submitted")).first()
                    if still is None:
                        continue  # a receipt came meanwhile
                    status = receipts.apply_to_part(c, r, state="unknown", error_code=None,
                                                    now=now, source="deadline")
                    upstream.owe_receipt(c, r.message_id, now=now)
                    done.append((r, status))
                return done

            for r, status in await self.store.write(settle):
                log.warning("mt=%d part %d final unknown: no receipt by the deadline and "
                            "query_sm did not tell (message %s)", r.message_id, r.part_no,
                            status)
            total += len(stale)
            self.on_final()
            if len(stale) < PAGE:
                return total
