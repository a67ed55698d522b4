"""deliver_sm handling: MOs and delivery receipts, each committed before it is acknowledged.

An MO is written to the store, then deliver_sm_resp is sent (design.md, guarantees), then it
is handed to the `MoProcessor`. A crash between the two is healed at start-up by
`MoProcessor.recover`. Receipts are matched to their MT, or kept until they can be.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from gateway.metrics import METRICS
from gateway.mo_processor import MoProcessor, StoredMo
from gateway.smpp import status as st
from gateway.smpp import text as smstext
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import Reply
from store import inbound, receipts, upstream
from store.store import Store

log = logging.getLogger("smsgw.inbound")

_RECEIPT_ESM = 0x04  # esm_class message type: SMSC delivery receipt (SMPP 3.4 §5.2.12)
_ESM_TYPE_MASK = 0x3C


def _now() -> datetime:
    return datetime.now(UTC)


def is_receipt(pdu: Pdu) -> bool:
    return (pdu.get("esm_class", 0) & _ESM_TYPE_MASK) == _RECEIPT_ESM


def dedup_keys(pdu: Pdu, now: datetime, window: float) -> tuple[str, str]:
    """(this time bucket's key, the previous bucket's key) for a deliver_sm.

    SMPP gives MOs no SMSC message id, so the identity is the PDU's content plus a time
    bucket of `window` seconds; a redelivery lands in the same or the previous bucket.
    """
    h = hashlib.sha256()
    for name in ("source_addr", "destination_addr", "esm_class", "data_coding",
                 "sar_msg_ref_num", "sar_segment_seqnum"):
        h.update(repr(pdu.get(name)).encode())
    h.update(pdu.get("short_message", b"") or b"")
    h.update(pdu.get("message_payload", b"") or b"")
    digest = h.hexdigest()[:40]
    bucket = int(now.timestamp() // max(window, 1.0))
    return f"{digest}:{bucket}", f"{digest}:{bucket - 1}"


def mo_content(pdu: Pdu) -> tuple[str, bytes, smstext.ConcatInfo | None]:
    """Decoded text, raw user data and concatenation info (UDH or sar_* TLVs) of an MO."""
    raw = pdu.get("message_payload") or pdu.get("short_message", b"")
    concat, payload = smstext.parse_udh(raw, pdu.get("esm_class", 0))
    if concat is None:
        concat = smstext.concat_from_sar(pdu.get("sar_msg_ref_num"),
                                         pdu.get("sar_total_segments"),
                                         pdu.get("sar_segment_seqnum"))
    return smstext.decode_text(payload, pdu.get("data_coding", 0)), raw, concat


class InboundHandler:
    def __init__(self, store: Store, processor: MoProcessor, *,
                 redelivery_window: float = 60.0,
                 on_upstream_owed: Callable[[], None] = lambda: None):
        self.store = store
        self.on_upstream_owed = on_upstream_owed
        self.processor = processor
        self.redelivery_window = redelivery_window

    async def on_deliver_sm(self, connection: str, pdu: Pdu) -> Reply:
        if is_receipt(pdu):
            return await self._receipt(connection, pdu)
        return await self._mo(connection, pdu)

    async def _mo(self, connection: str, pdu: Pdu) -> Reply:
        text, raw, concat = mo_content(pdu)
        now = _now()
        window = self.redelivery_window
        key, previous_key = dedup_keys(pdu, now, window)
        source, dest = str(pdu.get("source_addr", "")), str(pdu.get("destination_addr", ""))

        def persist(conn) -> tuple[int, bool]:
            earlier = inbound.find_mo(conn, connection=connection, dedup_key=previous_key)
            if earlier is not None:
                row = inbound.get_mo(conn, earlier)
                if row is not None and (now - row.received_at).total_seconds() < window:
                    return earlier, False
            return inbound.insert_mo(
                conn, connection=connection, dedup_key=key, source_addr=source,
                dest_addr=dest, text=text, data_coding=pdu.get("data_coding", 0),
                esm_class=pdu.get("esm_class", 0), short_message=raw, now=now,
                concat=(concat.ref, concat.total, concat.seq) if concat else None)

        mo_id, is_new = await self.store.write(persist)
        if not is_new:
            log.info("mo=%d duplicate from=%s conn=%s: acknowledged, not processed again",
                     mo_id, source, connection)
            METRICS.mo_duplicates.inc()
            return Reply()
        METRICS.messages_in.inc()
        log.info("mo=%d received from=%s to=%s conn=%s text=%r", mo_id, source, dest,
                 connection, text[:60])
        # Processing runs after the ack: the MO is already safe on disk.
        self.processor.submit(StoredMo(mo_id, connection, source, dest, text, concat))
        return Reply()

    async def _receipt(self, connection: str, pdu: Pdu) -> Reply:
        raw_text = smstext.decode_text(pdu.get("short_message", b""), pdu.get("data_coding", 0))
        parsed = smstext.parse_receipt(raw_text)
        smsc_id = pdu.get("receipted_message_id") or (parsed.id if parsed else None)
        if not smsc_id:
            log.warning("receipt without an id conn=%s text=%r: acknowledged, kept as MO",
                        connection, raw_text[:80])
            return await self._mo(connection, pdu)
        stat = parsed.stat if parsed else None
        if pdu.get("message_state") is not None:
            stat = smstext.MESSAGE_STATE_STAT.get(pdu.get("message_state"), stat)
        state = receipts.RECEIPT_STATES.get((stat or "UNKNOWN").upper(), "unknown")
        error_code = _int_or_none(parsed.err if parsed else None)
        def apply(c: Connection) -> int | None:
            now = _now()
            found = receipts.apply_receipt(
                c, connection=connection, smsc_message_id=smsc_id, state=state,
                error_code=error_code, raw=raw_text, now=now)
            if found is not None and upstream.owe_receipt(c, found, now=now) is not None:
                self.on_upstream_owed()
            return found

        message_id = await self.store.write(apply)
        METRICS.receipts.labels(state).inc()
        if message_id is None:
            log.info("receipt smsc_id=%s stat=%s conn=%s: no match yet, kept", smsc_id, stat,
                     connection)
        else:
            log.info("mt=%d receipt smsc_id=%s stat=%s err=%s", message_id, smsc_id, stat,
                     error_code)
        return Reply(st.ESME_ROK)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None

