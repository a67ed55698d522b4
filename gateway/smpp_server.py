"""The SMPP server interface: applications that already speak SMPP bind to us as their SMSC.

- Binds (transmitter, receiver, transceiver) are checked against `upstream_accounts` by
  gateway/bind_auth.py (scrypt off the event loop, throttled, same cost for unknown ids).
- submit_sm / data_sm enter the same durable outbound queue as everything else: priority_flag
  is mapped to our priorities, schedule_delivery_time and validity_period are honoured,
  submit_sm_resp carries our message id. destination_addr is normalised by
  common.phones.canonical (TON 1 = international); an impossible number gets ESME_RINVDSTADR.
  Text in short_message or message_payload, any data_coding (gateway.smpp.text.decode_text).
- Concatenated submits (UDH with 8- or 16-bit reference, or sar_* TLVs) are stored part by
  part and joined into ONE MT (store/upstream_concat.py); each part gets its own message_id
  ("c<group>-<seq>") and, when it asked for one, its own receipt. A message still incomplete
  after `reassembly_timeout` (SMSGW_UPSTREAM_REASSEMBLY_TIMEOUT) gets a failure receipt per
  part.
- What we owe an application — receipts for its MTs, MOs a rule forwarded to it — waits in
  the store and is delivered, in order, whenever it has a receiver or transceiver bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from common.fields import FieldError
from common.phones import InvalidPhoneNumber, canonical
from gateway.auth_throttle import AuthLimits
from gateway.bind_auth import BindAuthenticator
from gateway.mt_text import CEILING, MAX_PARTS_ENV, max_parts, mt_text
from gateway.smpp import session as sm
from gateway.smpp import status as st
from gateway.smpp import text as smstext
from gateway.smpp.address import INTERNATIONAL, ton_npi
from gateway.smpp.codec import Pdu
from gateway.smpp.connection import ConnectionClosed, Reply, ResponseTimeout, SmppConnection
from gateway.smpp.listener import ConnectionGate, ListenerLimits, start_listener
from gateway.smpp.smpp_time import SmppTimeError, parse_smpp_time
from store import outbound, upstream, upstream_concat
from store.store import Store

log = logging.getLogger("smsgw.smpp_server")

# SMPP priority_flag (0 lowest … 3 highest) → our queue priority (0 alerts … 3 bulk). Most
# applications leave it 0: that is ordinary transactional traffic, not bulk.
PRIORITY_MAP = {0: 2, 1: 2, 2: 1, 3: 0}
_RECEIPT_STAT = {"delivered": "DELIVRD", "failed": "UNDELIV", "expired": "EXPIRED",
                 "rejected": "REJECTD", "cancelled": "DELETED"}


def _now() -> datetime:
    return datetime.now(UTC)


class UpstreamServer:
    def __init__(self, store: Store, *, host: str = "127.0.0.1", port: int = 2777,
                 session_config: sm.SessionConfig | None = None, system_id: str = "smsgw",
                 on_enqueued: Callable[[], None] = lambda: None,
                 redelivery_interval: float = 5.0, reassembly_timeout: float = 300.0,
                 auth_limits: AuthLimits | None = None,
                 limits: ListenerLimits | None = None, tls: ssl.SSLContext | None = None):
        self.store = store
        self.host = host
        self.port = port
        self.limits = limits or ListenerLimits()
        self.session_config = self.limits.session_config(session_config or sm.SessionConfig())
        self.tls = tls
        self.gate: ConnectionGate | None = None
        self.system_id = system_id
        self.on_enqueued = on_enqueued
        self.redelivery_interval = redelivery_interval
        self.reassembly_timeout = reassembly_timeout
        self._server: asyncio.base_events.Server | None = None
        self._binds: dict[str, list[SmppConnection]] = {}
        self._wake = asyncio.Event()
        self._forwarder: asyncio.Task[None] | None = None
        self._last_submit: dict[str, float] = {}
        self.auth = BindAuthenticator(store, auth_limits)

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server, self.gate = await start_listener(
            lambda: SmppConnection(sm.Role.SMSC, self, config=self.session_config,
                                   name="upstream", local_system_id=self.system_id),
            self.host, self.port, limits=self.limits, name="upstream SMPP server",
            tls=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        await self.auth.warm()
        self._forwarder = loop.create_task(self._forward_loop(), name="upstream-forwarder")
        log.info("SMPP server for upstream applications on %s:%d%s", self.host, self.port,
                 " (TLS)" if self.tls else "")
        return self.port

    async def stop(self) -> None:
        if self._forwarder is not None:
            self._forwarder.cancel()
            await asyncio.gather(self._forwarder, return_exceptions=True)
        for conns in list(self._binds.values()):
            for conn in list(conns):
                await conn.unbind(timeout=2.0)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def wake(self) -> None:
        """Something may be owed to an application (a receipt, a forwarded MO)."""
        self._wake.set()

    # -- handler protocol -----------------------------------------------------------------------

    async def on_bind(self, conn: SmppConnection, event: sm.BindRequested) -> int:
        system_id = event.system_id
        source = conn.peer.rsplit(":", 1)[0]  # the address, without the port
        result = await self.auth.authenticate(source, system_id, event.password)
        if result.status != st.ESME_ROK:
            return result.status
        account = result.account
        conn.info["account"] = account
        conn.info["system_id"] = system_id
        self._binds.setdefault(system_id, []).append(conn)
        self.wake()
        return st.ESME_ROK

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        system_id = conn.info.get("system_id")
        if system_id and conn in self._binds.get(system_id, []):
            self._binds[system_id].remove(conn)

    async def on_request(self, conn: SmppConnection, pdu: Pdu) -> Reply:
        if pdu.command in ("submit_sm", "data_sm"):
            return await self._submit(conn, pdu)
        if pdu.command == "query_sm":
            return await self._query(pdu)
        if pdu.command == "cancel_sm":
            return Reply(st.ESME_RCANCELFAIL)  # body not parsed by the codec; cancel via API
        return Reply(st.ESME_RINVCMDID)

    # -- submit ---------------------------------------------------------------------------------

    async def _submit(self, conn: SmppConnection, pdu: Pdu) -> Reply:
        account = conn.info["account"]
        system_id = account.system_id
        source = str(pdu.get("source_addr", ""))
        raw_dest = str(pdu.get("destination_addr", ""))
        try:
            # TON 1 (international): the digits start with a country code (SMPP 3.4 §5.2.5).
            dest = canonical(raw_dest, international=pdu.get("dest_addr_ton", 0) == 1)
        except InvalidPhoneNumber as exc:
            log.warning("upstream=%s %s refused ESME_RINVDSTADR: %s", system_id, pdu.command,
                        exc)
            return Reply(st.ESME_RINVDSTADR)
        if not _source_allowed(source, account.allowed_sources):
            log.warning("upstream=%s source_addr %r not allowed", system_id, source)
            return Reply(st.ESME_RINVSRCADR)
        if account.tps and not self._within_rate(system_id, account.tps):
            return Reply(st.ESME_RTHROTTLED)
        short_message = pdu.get("short_message", b"") or b""
        payload_tlv = pdu.get("message_payload")
        if short_message and payload_tlv:
            # SMPP 3.4 §5.3.2.32: message_payload only when short_message is empty.
            return Reply(st.ESME_RINVPARLEN)
        esm_class = pdu.get("esm_class", 0)
        concat, body = smstext.parse_udh(payload_tlv or short_message, esm_class)
        if esm_class & smstext.ESM_UDHI and concat is None:
            # Our queue carries text; a UDH other than concatenation (ports, ...) would be lost.
            log.warning("upstream=%s %s refused ESME_RINVESMCLASS: UDH without a "
                        "concatenation element", system_id, pdu.command)
            return Reply(st.ESME_RINVESMCLASS)
        if concat is None:
            concat = smstext.concat_from_sar(pdu.get("sar_msg_ref_num"),
                                             pdu.get("sar_total_segments"),
                                             pdu.get("sar_segment_seqnum"))
        data_coding = int(pdu.get("data_coding", 0))
        scheme = smstext.data_coding_scheme(data_coding)
        if scheme.note:
            log.warning("upstream=%s %s: %s", system_id, pdu.command, scheme.note)
        text = smstext.decode_text(body, data_coding)
        try:
            # The one MT text check (gateway/mt_text.py), as for the API and the CLI; a part
            # of a long message is checked alone, the whole by its announced part count.
            mt_text(text, limit=max_parts() if concat is None else CEILING)
            if concat is not None and concat.total > max_parts():
                raise FieldError(f"{concat.total} parts announced; at most {max_parts()} are "
                                 f"allowed ({MAX_PARTS_ENV})", "text_too_long")
        except FieldError as exc:
            status = _TEXT_REFUSAL.get(exc.key, st.ESME_RINVMSGLEN)
            log.warning("upstream=%s %s refused %s: %s (data_coding %d)", system_id,
                        pdu.command, st.name(status), exc, data_coding)
            return Reply(status)
        now = _now()
        try:
            schedule_at = parse_smpp_time(pdu.get("schedule_delivery_time", ""), now=now)
        except SmppTimeError:
            return Reply(st.ESME_RINVSCHED)
        try:
            expires_at = parse_smpp_time(pdu.get("validity_period", ""), now=now)
        except SmppTimeError:
            return Reply(st.ESME_RINVEXPIRY)
        priority = PRIORITY_MAP.get(pdu.get("priority_flag", 0), 2)
        wants_receipt = bool(pdu.get("registered_delivery", 0) & 0x03)
        if concat is not None and concat.total > 1:
            return await self._submit_part(
                system_id, concat, source=source, dest=dest, data_coding=data_coding,
                body=body, text=text, wants_receipt=wants_receipt, priority=priority,
                schedule_at=schedule_at, expires_at=expires_at, now=now)

        def enqueue(c: Any) -> int:
            return outbound.enqueue_mt(
                c, dest_addr=dest, text=text, priority=priority, now=now,
                source_addr=source or None, schedule_at=schedule_at, expires_at=expires_at,
                registered_delivery=wants_receipt, upstream=system_id)

        mt_id = await self.store.write(enqueue, urgent=True)
        log.info("mt=%d queued from upstream=%s to=%s priority=%d", mt_id, system_id, dest,
                 priority)
        self.on_enqueued()
        return Reply(st.ESME_ROK, {"message_id": str(mt_id)})

    async def _submit_part(self, system_id: str, concat: smstext.ConcatInfo, *, source: str,
                           dest: str, data_coding: int, body: bytes, text: str,
                           wants_receipt: bool, priority: int, schedule_at: datetime | None,
                           expires_at: datetime | None, now: datetime) -> Reply:
        """One part of a concatenated submit: stored before it is answered; the last one
        missing queues the whole text as one MT (store/upstream_concat.py)."""

        def add(c: Any) -> upstream_concat.PartAccepted:
            return upstream_concat.add_part(
                c, system_id=system_id, source_addr=source, dest_addr=dest, ref=concat.ref,
                total=concat.total, seq=concat.seq, data_coding=data_coding, payload=body,
                text=text, registered_delivery=wants_receipt, priority=priority,
                schedule_at=schedule_at, expires_at=expires_at, now=now,
                join_text=_join_parts)

        part = await self.store.write(add, urgent=True)
        if part.repeated:
            log.info("upstream=%s part=%s to=%s repeated: already stored, same id again",
                     system_id, part.message_id, dest)
        else:
            log.info("upstream=%s part=%s to=%s ref=%d part %d/%d stored (%d of %d here)",
                     system_id, part.message_id, dest, concat.ref, concat.seq, concat.total,
                     part.received, part.total)
        if part.mt_id is not None:
            log.info("mt=%d queued from upstream=%s to=%s priority=%d joined from %d parts "
                     "(group c%d)", part.mt_id, system_id, dest, priority, part.total,
                     part.group_id)
            self.on_enqueued()
        return Reply(st.ESME_ROK, {"message_id": part.message_id})

    def _within_rate(self, system_id: str, tps: float) -> bool:
        now = time.monotonic()
        last = self._last_submit.get(system_id, 0.0)
        if now - last < 1.0 / tps:
            return False
        self._last_submit[system_id] = now
        return True

    async def _query(self, pdu: Pdu) -> Reply:
        asked = str(pdu.get("message_id", ""))
        part = upstream_concat.parse_part_message_id(asked)
        if part is not None:
            # A part's id: the state of the MT its group joined into (ENROUTE while the
            # group waits for parts, UNDELIVERABLE once it expired incomplete).
            group = await self.store.read(lambda c: upstream_concat.group_state(c, part[0]))
            if group is None:
                return Reply(st.ESME_RINVMSGID)
            status, joined = group
            if joined is None:
                state = 5 if status == "expired" else 1
                return Reply(st.ESME_ROK, {"message_id": asked, "final_date": "",
                                           "message_state": state, "error_code": 0})
            mt_id = joined
        else:
            try:
                mt_id = int(asked)
            except ValueError:
                return Reply(st.ESME_RINVMSGID)
        found = await self.store.read(lambda c: outbound.get_message(c, mt_id))
        if found is None:
            return Reply(st.ESME_RINVMSGID)
        state = {"delivered": 2, "expired": 3, "cancelled": 4, "failed": 5,
                 "rejected": 8}.get(found["status"], 1)
        return Reply(st.ESME_ROK, {"message_id": asked, "final_date": "",
                                   "message_state": state, "error_code": 0})

    # -- store and forward ----------------------------------------------------------------------

    def _receiver(self, system_id: str) -> SmppConnection | None:
        for conn in self._binds.get(system_id, []):
            if conn.bound and conn.session.state in (sm.State.BOUND_RX, sm.State.BOUND_TRX):
                return conn
        return None

    async def _forward_loop(self) -> None:
        # Incomplete concatenated submits are checked at least 4 times per timeout, so one
        # expires at most a quarter of the timeout late.
        interval = min(self.redelivery_interval, self.reassembly_timeout / 4)
        while True:
            self._wake.clear()
            try:
                await self._expire_incomplete()
                await self._deliver_pending()
            except Exception:
                log.exception("upstream forwarding failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def _expire_incomplete(self) -> None:
        now = _now()
        older_than = now - timedelta(seconds=self.reassembly_timeout)
        if not await self.store.read(
                lambda c: upstream_concat.has_expired(c, older_than=older_than)):
            return
        expired = await self.store.write(
            lambda c: upstream_concat.expire(c, older_than=older_than, now=now))
        for g in expired:
            log.warning("upstream=%s concatenated message c%d to=%s expired incomplete after "
                        "%gs: got parts %s of %d; %d failure receipts owed", g.system_id,
                        g.group_id, g.dest_addr, self.reassembly_timeout,
                        ",".join(map(str, g.received)), g.total, g.receipts_owed)

    async def _deliver_pending(self) -> None:
        targets = await self.store.read(upstream.targets_with_pending)
        for system_id in targets:
            conn = self._receiver(system_id)
            if conn is None:
                continue  # kept until the application binds
            items = await self.store.read(lambda c, s=system_id: upstream.pending_for(c, s))
            if items and not await self._deliver_batch(conn, items):
                break  # the application refused or went away: the rest waits for a retry

    async def _deliver_batch(self, conn: SmppConnection, items: list[dict[str, Any]]) -> bool:
        """Send ``items`` in order, up to the session's window at once (one at a time, with a
        commit each, capped receipts to an application at about 20/s), then record the
        delivered ones in one write. False when any was not accepted (retried later)."""
        stop = asyncio.Event()  # after a refusal nothing more is sent this round

        async def one(item: dict[str, Any]) -> bool:
            if stop.is_set():
                return False
            ok = await self._deliver(conn, item)
            if not ok:
                stop.set()
            return ok

        results = await asyncio.gather(*(one(item) for item in items))
        done = [item for item, ok in zip(items, results, strict=True) if ok]
        if done:
            now = _now()
            await self.store.write(lambda c: upstream.mark_delivered(c, done, now=now))
            for item in done:
                log.info("upstream=%s %s %d delivered", conn.info.get("system_id"),
                         item["kind"], item["id"])
        return len(done) == len(items)

    async def _deliver(self, conn: SmppConnection, item: dict[str, Any]) -> bool:
        params = _receipt_pdu(item) if item["kind"] == "receipt" else _mo_pdu(item)
        try:
            resp = await conn.request("deliver_sm", params)
        except (ResponseTimeout, ConnectionClosed) as exc:
            log.warning("upstream=%s %s %d not delivered: %s", conn.info.get("system_id"),
                        item["kind"], item["id"], exc)
            return False
        if resp.status != st.ESME_ROK:
            log.warning("upstream=%s refused %s %d: %s", conn.info.get("system_id"),
                        item["kind"], item["id"], st.name(resp.status))
            return False
        return True


# What an MT text refusal means in SMPP: a character nothing can carry (NUL: no handset shows
# U+0000, PostgreSQL cannot store it) is a failed submit; empty or too long, a bad length.
_TEXT_REFUSAL = {"text_char": st.ESME_RSUBMITFAIL}


def _join_parts(parts: list[tuple[bytes, int]]) -> str:
    # Parts checked NUL-free alone can still join into U+0000 (a UTF-16 unit split in two).
    return smstext.join_parts(parts).replace("\x00", "\ufffd")


def _source_allowed(source: str, allowed: str) -> bool:
    prefixes = [p.strip() for p in (allowed or "").split(",") if p.strip()]
    return not prefixes or any(source.startswith(p) for p in prefixes)


def _addresses(*, phone: str, other: str) -> dict[str, Any]:
    """A deliver_sm's addresses: from the (canonical) phone to the application's address."""
    src_ton, src_npi = ton_npi(phone, numeric=INTERNATIONAL)
    dst_ton, dst_npi = ton_npi(other)
    return {"source_addr_ton": src_ton, "source_addr_npi": src_npi, "source_addr": phone,
            "dest_addr_ton": dst_ton, "dest_addr_npi": dst_npi, "destination_addr": other}


def _receipt_pdu(item: dict[str, Any]) -> dict[str, Any]:
    stat = _RECEIPT_STAT.get(item["status"], "UNKNOWN")
    delivered = 1 if stat == "DELIVRD" else 0
    text = smstext.format_receipt(
        message_id=item["message_id"], submitted=1, delivered=delivered,
        submit_date=datetime.fromisoformat(item["submitted_at"]),
        done_date=datetime.fromisoformat(item["done_at"]), stat=stat,
        err=int(item.get("error_code") or 0) % 1000, text=item.get("text", ""))
    return {
        **_addresses(phone=item["dest_addr"], other=item["source_addr"]),
        "esm_class": 0x04, "data_coding": 0,
        "short_message": smstext.encode_text(_gsm_safe(text), 0),
        "receipted_message_id": item["message_id"],
        "message_state": smstext.STAT_MESSAGE_STATE.get(stat, 7),
    }


def _mo_pdu(item: dict[str, Any]) -> dict[str, Any]:
    text = item["text"]
    dc = smstext.choose_encoding(text)
    data = smstext.encode_text(text, dc)
    params: dict[str, Any] = {**_addresses(phone=item["source_addr"], other=item["dest_addr"]),
                              "esm_class": 0, "data_coding": dc}
    if len(data) <= 254:
        params["short_message"] = data
    else:
        params["message_payload"] = data
    return params


def _gsm_safe(text: str) -> str:
    return "".join(c if smstext.is_gsm7(c) else "?" for c in text)
