"""deliver_sm handling: MOs and delivery receipts, each committed before it is acknowledged.

An MO is written to the store, then deliver_sm_resp is sent (design.md, guarantees), then it
is handed to the `MoProcessor`. A crash between the two is healed at start-up by
`MoProcessor.recover`. Receipts are matched to their MT, or kept until they can be; a
receipt without an id is kept for operators and never taken for a command.

Redelivery or repeat? An SMSC redelivers only when our deliver_sm_resp did not reach it. So
an MO identical to an earlier one (same sender, destination and user data) is:
  - a NEW message when the earlier one's ack is confirmed: written on a session that then
    stayed up past the SMSC's response timeout (gateway/mo_acks.py);
  - a REDELIVERY of it otherwise (the session dropped, the gateway crashed, the ack was
    late), however late it comes, within SMSGW_MO_IDENTITY_HOURS.
An SMSC message id in the PDU (receipted_message_id on a non-receipt) decides exactly
instead. A redelivery has no second effect; the MoProcessor sends the original's answer
again (a read-only command is simply answered again).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from commands import secrets
from common.phones import canonical_or_none
from gateway.metrics import METRICS
from gateway.mo_acks import AckTracker
from gateway.mo_processor import MoProcessor, StoredMo
from gateway.mt_outcomes import MtOutcomes
from gateway.smpp import status as st
from gateway.smpp import text as smstext
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import Reply
from store import inbound, receipts
from store.store import Store

log = logging.getLogger("smsgw.inbound")

_RECEIPT_ESM = 0x04  # esm_class message type: SMSC delivery receipt (SMPP 3.4 §5.2.12)
_ESM_TYPE_MASK = 0x3C


def _now() -> datetime:
    return datetime.now(UTC)


def is_receipt(pdu: Pdu) -> bool:
    return (pdu.get("esm_class", 0) & _ESM_TYPE_MASK) == _RECEIPT_ESM


def content_key(pdu: Pdu, source: str) -> str:
    """The identity of an MO's content: sender (canonical form), destination and the PDU's
    user data. Two MOs with the same key are the same text from the same phone; whether
    the second is the SMSC redelivering the first or the person repeating it is decided by
    the acknowledgement rule (gateway/mo_acks.py, store.inbound.store_mo), not by time."""
    h = hashlib.sha256()
    h.update(source.encode())
    for name in ("destination_addr", "esm_class", "data_coding",
                 "sar_msg_ref_num", "sar_segment_seqnum"):
        h.update(repr(pdu.get(name)).encode())
    h.update(pdu.get("short_message", b"") or b"")
    h.update(pdu.get("message_payload", b"") or b"")
    return h.hexdigest()[:40]


def smsc_message_id(pdu: Pdu) -> str | None:
    """The SMSC's own id of an MO, when the PDU carries one.

    SMPP 3.4 gives deliver_sm no message_id; some SMSCs put their MO id in the
    receipted_message_id TLV of a deliver_sm that is not a receipt. When present it decides
    identity exactly (a redelivery repeats it, a person's repeat gets a new one).
    """
    value = pdu.get("receipted_message_id")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = (value or "").strip("\x00 ")
    return value or None


def mo_source(pdu: Pdu) -> str:
    """The sender in the one phone form (common.phones); an alphanumeric sender stays as is."""
    value = pdu.get("source_addr", "")
    raw = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return canonical_or_none(raw, international=pdu.get("source_addr_ton") == 1) or raw


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
                 acks: AckTracker | None = None, identity_hours: float = 48.0,
                 on_upstream_owed: Callable[[], None] = lambda: None,
                 outcomes: MtOutcomes | None = None):
        self.store = store
        self.on_upstream_owed = on_upstream_owed
        # Receipts are applied in batches, together with the dispatcher's submit responses
        # (the gateway hands this same object to its Dispatcher).
        self.outcomes = MtOutcomes(store) if outcomes is None else outcomes
        self.outcomes.on_upstream_owed = lambda: self.on_upstream_owed()
        self.processor = processor
        # No tracker (tests driving the handler directly): no ack is ever confirmed, so an
        # identical MO within the horizon is always taken as a redelivery (the safe side).
        self.acks = acks
        self.horizon = timedelta(hours=identity_hours)

    async def on_deliver_sm(self, connection: str, pdu: Pdu, session: Any = None) -> Reply:
        """`session`: the SmppConnection the deliver_sm came on (its ack is tracked)."""
        if is_receipt(pdu):
            return await self._receipt(connection, pdu, session)
        return await self._mo(connection, pdu, session)

    def _fields(self, pdu: Pdu, source: str, text: str, raw: bytes,
                concat: smstext.ConcatInfo | None, session: Any) -> dict[str, Any]:
        return dict(
            source_addr=source, dest_addr=str(pdu.get("destination_addr", "")), text=text,
            data_coding=pdu.get("data_coding", 0), esm_class=pdu.get("esm_class", 0),
            short_message=raw, concat=(concat.ref, concat.total, concat.seq) if concat else None,
            ack_session=(self.acks.session_key(session)
                         if self.acks is not None and session is not None else None))

    async def _mo(self, connection: str, pdu: Pdu, session: Any) -> Reply:
        # On the tracker's clock: "answered promptly" compares it with when the ack left.
        arrived = self.acks.clock() if self.acks is not None else time.monotonic()
        text, raw, concat = mo_content(pdu)
        now = _now()
        source = mo_source(pdu)
        fields = self._fields(pdu, source, text, raw, concat, session)
        key, smsc_id = content_key(pdu, source), smsc_message_id(pdu)
        stored = await self.store.write(lambda c: inbound.store_mo(
            c, connection=connection, content_key=key, smsc_message_id=smsc_id,
            horizon=self.horizon, now=now, **fields), urgent=True)
        if self.acks is not None and session is not None:
            self.acks.acked(stored.id, session, arrived)
        if stored.duplicate_of is not None:
            METRICS.mo_duplicates.inc()
            log.info("mo=%d redelivery of mo=%d from=%s conn=%s: acknowledged, its answer "
                     "will be sent again, no second effect", stored.id, stored.duplicate_of,
                     source, connection)
        else:
            METRICS.messages_in.inc()
            log.info("mo=%d received from=%s to=%s conn=%s%s text=%r", stored.id, source,
                     fields["dest_addr"], connection,
                     f" smsc_id={smsc_id}" if smsc_id else "", _loggable(text, concat))
        # Processing runs after the ack: the MO is already safe on disk.
        self.processor.submit(StoredMo(stored.id, connection, source, fields["dest_addr"],
                                       text, concat, stored.duplicate_of))
        return Reply()

    async def _receipt_without_id(self, connection: str, pdu: Pdu, session: Any,
                                  raw_text: str) -> Reply:
        """Not an MO (esm_class says receipt): never parsed as a command, never answered."""
        text, raw, concat = mo_content(pdu)
        now = _now()
        source = mo_source(pdu)
        fields = self._fields(pdu, source, text, raw, concat, session)
        mo_id = await self.store.write(lambda c: inbound.store_receipt_without_id(
            c, connection=connection, now=now, **fields), urgent=True)
        METRICS.mo_dispositions.labels("receipt_without_id").inc()
        log.warning("mo=%d disposition=receipt_without_id from=%s conn=%s text=%r: a delivery "
                    "receipt carrying no id; kept, not answered", mo_id, source, connection,
                    raw_text[:80])
        return Reply(st.ESME_ROK)

    async def _receipt(self, connection: str, pdu: Pdu, session: Any) -> Reply:
        raw_text = smstext.decode_text(pdu.get("short_message", b""), pdu.get("data_coding", 0))
        parsed = smstext.parse_receipt(raw_text)
        smsc_id = pdu.get("receipted_message_id") or (parsed.id if parsed else None)
        if not smsc_id:
            return await self._receipt_without_id(connection, pdu, session, raw_text)
        stat = parsed.stat if parsed else None
        if pdu.get("message_state") is not None:
            stat = smstext.MESSAGE_STATE_STAT.get(pdu.get("message_state"), stat)
        state = receipts.RECEIPT_STATES.get((stat or "UNKNOWN").upper(), "unknown")
        error_code = _int_or_none(parsed.err if parsed else None)
        message_id = await self.outcomes.receipt(receipts.ReceiptIn(
            connection, smsc_id, state, error_code, raw_text))
        METRICS.receipts.labels(state).inc()
        if message_id is None:
            log.info("receipt smsc_id=%s stat=%s conn=%s: no match yet, kept", smsc_id, stat,
                     connection)
        else:
            log.info("mt=%d receipt smsc_id=%s stat=%s err=%s", message_id, smsc_id, stat,
                     error_code)
        return Reply(st.ESME_ROK)


def _loggable(text: str, concat: smstext.ConcatInfo | None) -> str:
    """The MO text for the log: secrets masked (commands/secrets.py). A part of a long
    message cannot be masked alone (a PIN may straddle two parts), so it is not logged;
    the reassembled message's disposition line follows."""
    if concat is not None and concat.total > 1:
        return f"<part {concat.seq}/{concat.total}, {len(text)} chars>"
    return secrets.mask(text)[:60]


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None

