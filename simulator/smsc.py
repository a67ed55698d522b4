"""The SMSC simulator: an SMPP 3.4 server that stands in for an operator's SMSC and its
handsets.

What it does, in the order a message flows:

- **Binds.** ESMEs bind as transmitter, receiver or transceiver with an account from the
  config; unknown system_id → ESME_RINVSYSID, wrong password → ESME_RINVPASWD. Any number of
  binds may be open at once.
- **MT (submit_sm / data_sm).** Validated (destination, data_coding, throttle), answered with
  a process-unique message_id, then "delivered": the outcome (DELIVRD, UNDELIV, ...) is drawn
  from the configured mix with a seeded RNG, and a DELIVRD message lands in the inbox of the
  destination's virtual handset (concatenated parts joined, text decoded).
- **Receipts.** When registered_delivery asks for one, a deliver_sm with esm_class 0x04 and
  the SMPP 3.4 Appendix B text (plus receipted_message_id / message_state TLVs) goes out
  after `receipt_delay` to a receiver or transceiver bound with the *same* system_id. If none
  is bound it waits for one.
- **MO.** `inject_mo` (or ``POST /mo`` on the control API) splits a text like a phone would
  and sends each part as deliver_sm to a bound receiver/transceiver, round-robin. Nothing
  bound → it waits. An error response or no response → the *identical* PDU content is sent
  again after `mo_retry_interval`, as a real SMSC does, so the gateway can deduplicate.
- **Faults.** `sim.faults` (simulator/faults.py) makes it misbehave on purpose: withhold or
  delay a submit_sm_resp, answer any status (bursts of ESME_RTHROTTLED...), drop or unbind
  mid-window, refuse binds for a while, send malformed PDUs or a deliver_sm before the
  bind_resp, stop reading. Also from the control API (``POST /faults``) and by texting a
  reserved number: ``<fault_prefix><code><arg>``, prefix 86999 by default, e.g.
  ``8699901`` withhold, ``8699902030`` answer 30 s late, ``8699903008`` ESME_RSYSERR,
  ``8699904`` drop the connection, ``8699905`` unbind (the full plan is in faults.py).

Everything runs on one asyncio loop; the simulator is also a plain Python object for tests::

    async with Simulator(SimulatorConfig(port=0, control_port=None)) as sim:
        conn = await connect("127.0.0.1", sim.port, handler)
        ...
        await sim.inject_mo("8613800000001", "10690", "BAL")
        msgs = await sim.wait_for_inbox("8613800000001", 1, timeout=5)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from common.phones import canonical_or_none
from gateway.smpp import status as st
from gateway.smpp.address import INTERNATIONAL, NETWORK_SPECIFIC, ton_npi
from gateway.smpp.codec import Pdu, encode
from gateway.smpp.connection import (
    ConnectionClosed,
    Reply,
    ResponseTimeout,
    SmppConnection,
)
from gateway.smpp.listener import ConnectionGate, ListenerLimits, start_listener
from gateway.smpp.session import BindRequested, NotAllowed, Role, SessionConfig, State
from gateway.smpp.text import (
    DC_GSM7,
    STAT_MESSAGE_STATE,
    SplitResult,
    concat_from_sar,
    decode_text,
    format_receipt,
    gsm7_encode,
    is_gsm7,
    parse_udh,
    split_text,
)
from gateway.tls import server_context
from simulator.config import SimulatorConfig
from simulator.faults import STRAY_SEQUENCE, Faults
from simulator.handsets import Handset, HandsetBook, InboxMessage

log = logging.getLogger("smsgw.simulator")

# data_coding values we can decode (SMPP 3.4 §5.2.19): default alphabet (GSM 03.38 for us),
# IA5, 8-bit binary (2 and 4), Latin-1, UCS2. Others (JIS, Cyrillic, ...) → ESME_RINVDCS.
KNOWN_DATA_CODINGS = frozenset({0, 1, 2, 3, 4, 8})

ESM_RECEIPT = 0x04  # SMPP 3.4 §5.2.12: "SMSC Delivery Receipt"
_RECEIVING = (State.BOUND_RX, State.BOUND_TRX)

# Error code printed in the receipt's "err:" field and sent in network_error_code. The
# values are the simulator's convention (GSM MAP causes), not a standard mapping.
RECEIPT_ERR = {"DELIVRD": 0, "ACCEPTD": 0, "ENROUTE": 0, "UNKNOWN": 0, "DELETED": 0,
               "UNDELIV": 1, "EXPIRED": 27, "REJECTD": 11}

# Message ids are unique for the life of the process, across Simulator instances, and very
# likely across restarts too: the counter starts at the current time in microseconds, so a
# gateway that keeps ids in its database does not see a restarted simulator reuse old ones.
_message_ids = itertools.count(time.time_ns() // 1000)
_mo_ids = itertools.count(1)
_MAX_REMEMBERED = 100_000  # submitted messages kept for query_sm


def _new_message_id(fmt: str) -> str:
    n = next(_message_ids)
    return f"{n:x}" if fmt == "hex" else str(n)


def _ton_npi(addr: str) -> tuple[int, int]:
    """A plausible TON/NPI for an address the simulator makes up: a short code is the
    network's, a longer number international."""
    digits = addr.removeprefix("+")
    return ton_npi(addr, numeric=NETWORK_SPECIFIC if len(digits) <= 8 else INTERNATIONAL)


class Throttle:
    """Token bucket: `tps` submits per second on average, bursts up to max(1, tps)."""

    def __init__(self, tps: float = 0) -> None:
        self.set(tps)

    def set(self, tps: float) -> None:
        if tps < 0:
            raise ValueError("tps must be >= 0 (0 = no throttling)")
        self.tps = float(tps)
        self._capacity = max(1.0, self.tps)
        self._tokens = self._capacity
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        if self.tps <= 0:
            return True
        if self._last is not None:
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.tps)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


@dataclass(slots=True)
class Submitted:
    """An MT the simulator accepted (kept for query_sm and for the receipt)."""

    message_id: str
    system_id: str
    source_addr: str
    destination_addr: str
    text: str
    outcome: str
    submitted_at: datetime
    done_at: datetime
    part: str  # "1/1", "2/3"


@dataclass(slots=True, eq=False)
class Outgoing:
    """A deliver_sm the simulator has to get acknowledged: an MO part or a receipt."""

    id: str
    kind: str  # "mo" or "receipt"
    params: dict[str, Any]
    system_id: str | None = None  # receipts: only a bind of this account may take it
    attempts: int = 0
    delivered: bool = False
    last_status: str | None = None
    statuses: list[str] = field(default_factory=list)
    delivered_to: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Simulator:
    """SMPP server + virtual handsets + control API. See the module docstring."""

    def __init__(self, config: SimulatorConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = SimulatorConfig(**overrides)
        elif overrides:
            config = SimulatorConfig.model_validate({**config.model_dump(), **overrides})
        self.config = config
        self.handsets = HandsetBook(config.reassembly_timeout, config.inbox_limit)
        self.handsets.add_listener(self._on_inbox)
        # Separate generators so injecting MOs never shifts the sequence of outcomes.
        self._rng = random.Random(config.seed)
        self._ref_rng = random.Random(config.seed)
        self._throttle = Throttle(config.throttle_tps)
        self.limits = ListenerLimits(
            max_connections=config.max_connections,
            max_per_source=config.max_connections_per_source,
            bind_timeout=config.bind_timeout, pdu_read_timeout=config.pdu_read_timeout,
            max_unanswered=config.max_unanswered)
        self._session_config = self.limits.session_config(SessionConfig(
            window=config.window, response_timeout=config.response_timeout,
            enquire_link_interval=config.enquire_link_interval))
        self.gate: ConnectionGate | None = None
        self._server: asyncio.Server | None = None
        self._control: Any = None  # control_api.ControlServer
        self._conns: set[SmppConnection] = set()
        self._conn_names = itertools.count(1)
        self._rr = 0
        self._bind_changed: asyncio.Future[None] | None = None
        self._inbox_changed: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._outgoing: dict[str, Outgoing] = {}  # MOs and receipts by id (MOs kept for redeliver)
        self._submitted: OrderedDict[str, Submitted] = OrderedDict()
        self._concat_refs: dict[str, int] = {}
        self._started = False
        self.port = 0
        self.control_port: int | None = None
        self._counts: Counter[str] = Counter()
        self._submit_status: Counter[str] = Counter()
        self._deliver_status: Counter[str] = Counter()
        self._receipt_stats: Counter[str] = Counter()
        self.faults = Faults(config.fault_prefix)  # fault injection (simulator/faults.py)

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for SMPP (and HTTP when control_port is not None). Idempotent."""
        if self._started:
            return
        loop = asyncio.get_running_loop()
        self._bind_changed = loop.create_future()
        self._inbox_changed = loop.create_future()
        cfg = self.config
        tls = server_context(cfg.tls_cert, cfg.tls_key) if cfg.tls_cert else None
        self._server, self.gate = await start_listener(
            self._make_connection, cfg.host, cfg.port, limits=self.limits,
            name="simulator SMPP", tls=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        self._started = True
        if cfg.control_port is not None:
            from simulator.control_api import ControlServer

            self._control = ControlServer(self, cfg.host, cfg.control_port)
            try:
                self.control_port = await self._control.start()
            except BaseException:
                await self.stop()
                raise
        for item in self._outgoing.values():  # left over from a previous start/stop
            if not item.delivered:
                self._spawn(self._deliver(item))
        log.info("simulator listening smpp=%s:%d%s control=%s accounts=%s outcomes=%s seed=%s "
                 "receipt_delay=%gs throttle=%s", cfg.host, self.port,
                 " (TLS)" if tls else "",
                 f"http://{cfg.host}:{self.control_port}" if self.control_port else "off",
                 ",".join(cfg.accounts), _fmt_outcomes(cfg.receipt_outcomes), cfg.seed,
                 cfg.receipt_delay, f"{cfg.throttle_tps:g}/s" if cfg.throttle_tps else "off")

    async def stop(self, unbind_timeout: float = 2.0) -> None:
        """Stop accepting, unbind every session (bounded wait), stop the control API.

        Undelivered MOs and receipts stay queued in memory; `start` again resumes them.
        """
        if not self._started:
            return
        self._started = False
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.faults.cancel_tasks()
        conns = list(self._conns)
        await asyncio.gather(*(c.unbind(timeout=unbind_timeout) for c in conns),
                             return_exceptions=True)
        if self._control is not None:
            await self._control.stop()
            self._control = None
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), unbind_timeout)
            self._server = None
        log.info("simulator stopped")

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._started

    # -- public API for tests and the control API --------------------------------------------------

    def handset(self, msisdn: str, *, international: bool = False) -> Handset:
        """The virtual handset of ``msisdn`` (created on first use). Every written form of a
        number (``+86 138-0000-0001``, ``13800000001``) is one handset, keyed by the one
        canonical form (common.phones, SMSGW_DEFAULT_COUNTRY); other addresses as written.
        ``international``: the PDU said so (TON 1), so the digits need one reading, not two."""
        return self.handsets.get(canonical_or_none(msisdn, international=international)
                                 or msisdn)

    async def inject_mo(self, source: str, dest: str | None, text: str, *,
                        data_coding: int | None = None,
                        short_message: bytes | None = None) -> list[str]:
        """A handset ``source`` texts ``dest``: queue one deliver_sm per part and return their
        MO ids at once (delivery is asynchronous; see `wait_delivered`).

        Long texts are split with an 8-bit concatenation UDH, GSM 03.38 when the text fits
        it, else UCS2 (or the given data_coding: 0, 3, 4 or 8). Raises ValueError when the
        text cannot be encoded that way. With ``short_message``, those exact octets go out
        as one deliver_sm with ``data_coding`` as given (any value 0-255, default 0), as
        real SMSCs send them; ``text`` is then only for the log.
        """
        if not self._started:
            raise RuntimeError("simulator is not running; call start() first")
        dest = dest or self.config.default_short_code
        if not source:
            raise ValueError("source (the handset's MSISDN) is empty")
        for name, addr in (("source", source), ("dest", dest)):
            if len(addr) > 20:
                raise ValueError(f"{name} {addr!r} is longer than 20 characters (SMPP 3.4)")
        if short_message is not None:
            if not 0 <= (data_coding or 0) <= 0xFF or len(short_message) > 254:
                raise ValueError("raw short_message needs data_coding 0-255 and <= 254 octets")
            split = SplitResult(data_coding or 0, 0, [bytes(short_message)])
        else:
            if data_coding is not None and data_coding not in KNOWN_DATA_CODINGS:
                raise ValueError(f"data_coding {data_coding} is not one of "
                                 f"{sorted(KNOWN_DATA_CODINGS)}")
            ref = self._concat_refs.get(source, self._ref_rng.randrange(256))
            split = split_text(text, ref=ref, data_coding=data_coding)
            if len(split.parts) > 1:
                self._concat_refs[source] = (ref + 1) % 256
        src_ton, src_npi = _ton_npi(source)
        dst_ton, dst_npi = _ton_npi(dest)
        ids: list[str] = []
        total = len(split.parts)
        for seq, part in enumerate(split.parts, 1):
            mo_id = f"mo-{next(_mo_ids)}"
            params = {
                "service_type": "", "source_addr_ton": src_ton, "source_addr_npi": src_npi,
                "source_addr": source, "dest_addr_ton": dst_ton, "dest_addr_npi": dst_npi,
                "destination_addr": dest, "esm_class": split.esm_class, "protocol_id": 0,
                "priority_flag": 0, "registered_delivery": 0,
                "data_coding": split.data_coding, "short_message": part,
            }
            item = Outgoing(mo_id, "mo", params)
            self._outgoing[mo_id] = item
            self._counts["mo_injected"] += 1
            log.info("mo queued mo_id=%s from=%s to=%s part=%d/%d dc=%d text=%r", mo_id,
                     source, dest, seq, total, split.data_coding,
                     _preview(decode_text(parse_udh(part, split.esm_class)[1],
                                          split.data_coding)))
            self._spawn(self._deliver(item))
            ids.append(mo_id)
        return ids

    async def redeliver(self, mo_id: str, timeout: float | None = None) -> None:
        """Send an MO that was already acknowledged once more (same content), as an SMSC
        does after a lost deliver_sm_resp; returns when the ESME has acknowledged it again."""
        item = self._outgoing.get(mo_id)
        if item is None or item.kind != "mo":
            raise KeyError(f"unknown MO id {mo_id!r}")
        if item.delivered:
            item.delivered = False
            item.done = asyncio.Event()
            self._counts["mo_redelivered"] += 1
            log.info("mo redeliver mo_id=%s", mo_id)
            self._spawn(self._deliver(item))
        await asyncio.wait_for(item.done.wait(), timeout)

    async def wait_delivered(self, mo_ids: list[str] | str, timeout: float = 5.0) -> None:
        """Wait until every given MO (or receipt) id has been acknowledged with ESME_ROK."""
        ids = [mo_ids] if isinstance(mo_ids, str) else list(mo_ids)
        items = [self._outgoing[i] for i in ids]
        try:
            await asyncio.wait_for(asyncio.gather(*(i.done.wait() for i in items)), timeout)
        except TimeoutError:
            waiting = [i.id for i in items if not i.delivered]
            raise TimeoutError(f"not acknowledged within {timeout:g}s: {waiting}") from None

    def mo(self, mo_id: str) -> Outgoing:
        """The state of one injected MO part (attempts, statuses, delivered, ...)."""
        item = self._outgoing[mo_id]
        if item.kind != "mo":
            raise KeyError(mo_id)
        return item

    def drop_connections(self) -> int:
        """Fault injection: close every connection abruptly (no unbind). Returns how many."""
        conns = list(self._conns)
        for conn in conns:
            if conn.transport is not None:
                conn.transport.abort()
        log.warning("fault: dropped %d connection(s)", len(conns))
        self._counts["drops"] += len(conns)
        return len(conns)

    def set_throttle(self, tps: float) -> None:
        """Above ``tps`` submit_sm per second, answer ESME_RTHROTTLED; 0 turns it off."""
        self._throttle.set(tps)
        log.info("throttle set to %s", f"{tps:g}/s" if tps else "off")

    @property
    def throttle_tps(self) -> float:
        return self._throttle.tps

    def submitted(self, message_id: str) -> Submitted | None:
        """What was accepted under ``message_id`` (the last 100,000 are remembered)."""
        return self._submitted.get(message_id)

    def stats(self) -> dict[str, Any]:
        """Counters for dashboards and tests (also ``GET /stats``)."""
        by_type = Counter(c.session.state.value for c in self._conns if c.bound)
        pending = [o for o in self._outgoing.values() if not o.delivered]
        c = self._counts
        return {
            "binds": {
                "current": sum(by_type.values()),
                "transmitter": by_type.get(State.BOUND_TX.value, 0),
                "receiver": by_type.get(State.BOUND_RX.value, 0),
                "transceiver": by_type.get(State.BOUND_TRX.value, 0),
                "accepted_total": c["binds_accepted"],
                "refused_total": c["binds_refused"],
                "dropped_total": c["drops"],
            },
            "submits": {
                "received": c["submits_received"],
                "accepted": self._submit_status.get("ESME_ROK", 0),
                "by_status": dict(self._submit_status),
            },
            "receipts": {
                "sent": c["receipts_sent"],
                "pending": sum(1 for o in pending if o.kind == "receipt"),
                "by_stat": dict(self._receipt_stats),
            },
            "mo": {
                "injected": c["mo_injected"],
                "delivered": c["mo_delivered"],
                "pending": sum(1 for o in pending if o.kind == "mo"),
                "retries": c["mo_retries"],
                "redelivered": c["mo_redelivered"],
            },
            "deliver_sm_resp": dict(self._deliver_status),
            "handsets": len(self.handsets),
            "inbox_messages": sum(len(h.inbox) for h in self.handsets),
            "inbox_forgotten": self.handsets.forgotten,
            "throttle_tps": self._throttle.tps,
            "faults": self.faults.stats(),
        }

    async def wait_for_inbox(self, msisdn: str, count: int = 1,
                             timeout: float = 5.0) -> list[InboxMessage]:
        """Wait until the handset has at least ``count`` inbox messages; return them all.

        Raises TimeoutError naming what did arrive, which makes failing tests readable."""
        handset = self.handset(msisdn)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len((handset := self.handset(msisdn)).inbox) < count:  # may have been forgotten
            left = deadline - loop.time()
            if left <= 0 or self._inbox_changed is None:
                got = [m.text for m in handset.inbox]
                raise TimeoutError(f"handset {msisdn} has {len(got)} of {count} messages "
                                   f"after {timeout:g}s: {got!r}")
            await asyncio.wait({self._inbox_changed}, timeout=left)
        return list(handset.inbox)

    # -- SMPP handler (gateway.smpp.connection.Handler) --------------------------------------------

    def _make_connection(self) -> SmppConnection:
        conn = SmppConnection(Role.SMSC, self, config=self._session_config,
                              name=f"sim-{next(self._conn_names)}",
                              local_system_id=self.config.system_id)
        self._conns.add(conn)
        return conn

    async def on_bind(self, conn: SmppConnection, event: BindRequested) -> int:
        system_id = event.system_id
        expected = self.config.accounts.get(system_id)
        if expected is None:
            status = st.ESME_RINVSYSID
        elif event.password != expected:
            status = st.ESME_RINVPASWD
        else:
            status = self.faults.bind_refusal(system_id) or st.ESME_ROK
        if status != st.ESME_ROK:
            self._counts["binds_refused"] += 1
            log.warning("bind refused conn=%s system_id=%s peer=%s status=%s", conn.name,
                        system_id, conn.peer, st.name(status))
            return status
        conn.info["system_id"] = system_id
        conn.info["bind"] = event.pdu.command
        early = self.faults.early_mo(system_id)
        if early is not None:
            await self._deliver_before_bind(conn, early.from_, early.text)
        self._counts["binds_accepted"] += 1
        log.info("bind accepted conn=%s system_id=%s as=%s peer=%s", conn.name, system_id,
                 event.pdu.command.removeprefix("bind_"), conn.peer)
        # The session enters the bound state when we return; wake waiting deliveries after.
        asyncio.get_running_loop().call_soon(self._signal_binds)
        return status

    async def on_request(self, conn: SmppConnection, pdu: Pdu) -> Reply:
        if pdu.command in ("submit_sm", "data_sm"):
            return await self.faults.answer_submit(conn, pdu,
                                                   lambda: self._on_submit(conn, pdu))
        if pdu.command == "query_sm":
            return self._on_query(pdu)
        if pdu.command == "cancel_sm":
            return Reply(st.ESME_RCANCELFAIL)
        if pdu.command == "replace_sm":
            return Reply(st.ESME_RREPLACEFAIL)
        log.info("unsupported %s from conn=%s: answered ESME_RINVCMDID", pdu.command, conn.name)
        return Reply(st.ESME_RINVCMDID)

    def on_closed(self, conn: SmppConnection, reason: str) -> None:
        self._conns.discard(conn)
        if "system_id" in conn.info:
            log.info("unbound conn=%s system_id=%s reason=%s", conn.name,
                     conn.info["system_id"], reason)
        self._signal_binds()

    async def _deliver_before_bind(self, conn: SmppConnection, source: str, text: str) -> None:
        """Fault: an MO goes out as deliver_sm ahead of the bind_resp (SMPP 3.4 §2.3 forbids
        it; some SMSCs do it). It is queued normally too, so it still arrives once bound."""
        mo_ids = await self.inject_mo(source, None, text)
        early = Pdu("deliver_sm", STRAY_SEQUENCE, 0, dict(self.mo(mo_ids[0]).params))
        if conn.transport is not None:
            conn.transport.write(encode(early))
        log.warning("fault: deliver_sm for mo_id=%s sent before the bind_resp conn=%s",
                    mo_ids[0], conn.name)

    # -- MT ---------------------------------------------------------------------------------------

    def _reject(self, conn: SmppConnection, pdu: Pdu, status: int, why: str) -> Reply:
        self._submit_status[st.name(status)] += 1
        log.info("%s rejected conn=%s to=%s status=%s: %s", pdu.command, conn.name,
                 pdu.get("destination_addr", ""), st.name(status), why)
        return Reply(status)

    def _on_submit(self, conn: SmppConnection, pdu: Pdu) -> Reply:
        self._counts["submits_received"] += 1
        loop = asyncio.get_running_loop()
        if not self._throttle.allow(loop.time()):
            return self._reject(conn, pdu, st.ESME_RTHROTTLED,
                                f"over {self._throttle.tps:g} submit_sm/s")
        dest = str(pdu.get("destination_addr", ""))
        if not dest:
            return self._reject(conn, pdu, st.ESME_RINVDSTADR, "destination_addr is empty")
        dc = int(pdu.get("data_coding", 0))
        if dc not in KNOWN_DATA_CODINGS:
            return self._reject(conn, pdu, st.ESME_RINVDCS, f"data_coding {dc} not supported")
        esm_class = int(pdu.get("esm_class", 0))
        short_message = pdu.get("short_message", b"") or b""
        payload_tlv = pdu.get("message_payload")
        if short_message and payload_tlv:
            return self._reject(conn, pdu, st.ESME_RINVPARLEN,
                                "both short_message and message_payload are set")
        raw = payload_tlv or short_message
        concat, body = parse_udh(raw, esm_class)
        if concat is None:
            concat = concat_from_sar(pdu.get("sar_msg_ref_num"), pdu.get("sar_total_segments"),
                                     pdu.get("sar_segment_seqnum"))
        text = decode_text(body, dc)
        source = str(pdu.get("source_addr", ""))
        system_id = conn.info.get("system_id", "")
        message_id = _new_message_id(self.config.message_id_format)
        outcome = self._choose_outcome()
        now = datetime.now()
        record = Submitted(message_id, system_id, source, dest, text, outcome, now,
                           now + timedelta(seconds=self.config.receipt_delay),
                           f"{concat.seq}/{concat.total}" if concat else "1/1")
        dropped = self.faults.receipt_fault  # a no_receipt fault (simulator/faults.py)
        if dropped is None or not dropped.forget:
            self._remember(record)
        self._submit_status["ESME_ROK"] += 1
        registered = int(pdu.get("registered_delivery", 0)) & 0x03
        # SMPP 3.4 §5.2.17: 1 = receipt on success or failure, 2 = on failure only.
        wants_receipt = registered in (1, 3) or (registered == 2 and outcome != "DELIVRD")
        log.info("submit accepted conn=%s system_id=%s message_id=%s from=%s to=%s dc=%d "
                 "part=%s outcome=%s receipt=%s text=%r", conn.name, system_id, message_id,
                 source, dest, dc, record.part, outcome, "yes" if wants_receipt else "no",
                 _preview(text))
        if outcome == "DELIVRD":
            self.handset(dest, international=pdu.get("dest_addr_ton") == 1).receive(
                source_addr=source, payload=body, data_coding=dc,
                                       message_id=message_id, concat=concat)
        if wants_receipt and dropped is None:
            self._queue_receipt(pdu, record)
        elif wants_receipt:
            log.warning("fault: no receipt for message_id=%s%s", message_id,
                        " (and forgotten: query_sm answers ESME_RINVMSGID)"
                        if dropped.forget else "")
        return Reply(st.ESME_ROK, {"message_id": message_id})

    def _choose_outcome(self) -> str:
        outcomes = self.config.receipt_outcomes
        if len(outcomes) == 1:
            return next(iter(outcomes))
        return self._rng.choices(list(outcomes), weights=list(outcomes.values()))[0]

    def _remember(self, record: Submitted) -> None:
        self._submitted[record.message_id] = record
        while len(self._submitted) > _MAX_REMEMBERED:
            self._submitted.popitem(last=False)

    def _on_query(self, pdu: Pdu) -> Reply:
        message_id = str(pdu.get("message_id", ""))
        record = self._submitted.get(message_id)
        if record is None:
            return Reply(st.ESME_RINVMSGID, {"message_id": message_id})
        if datetime.now() < record.done_at:
            return Reply(st.ESME_ROK, {"message_id": message_id, "final_date": "",
                                       "message_state": 1, "error_code": 0})  # ENROUTE
        final = record.done_at.strftime("%y%m%d%H%M%S") + "000+"  # SMPP 3.4 §7.1.1
        return Reply(st.ESME_ROK, {
            "message_id": message_id, "final_date": final,
            "message_state": STAT_MESSAGE_STATE[record.outcome],
            "error_code": RECEIPT_ERR.get(record.outcome, 0)})

    def _queue_receipt(self, submit: Pdu, record: Submitted) -> None:
        stat = record.outcome
        err = RECEIPT_ERR.get(stat, 0)
        # Appendix B "text:" is the first 20 characters of the message; keep it GSM-safe
        # because the receipt itself goes out with data_coding 0.
        snippet = "".join(ch if is_gsm7(ch) else "?" for ch in record.text[:20])
        text = format_receipt(message_id=record.message_id, submitted=1,
                              delivered=1 if stat == "DELIVRD" else 0,
                              submit_date=record.submitted_at, done_date=record.done_at,
                              stat=stat, err=err, text=snippet)
        params: dict[str, Any] = {
            "service_type": "",
            "source_addr_ton": int(submit.get("dest_addr_ton", 0)),
            "source_addr_npi": int(submit.get("dest_addr_npi", 0)),
            "source_addr": record.destination_addr,
            "dest_addr_ton": int(submit.get("source_addr_ton", 0)),
            "dest_addr_npi": int(submit.get("source_addr_npi", 0)),
            "destination_addr": record.source_addr,
            "esm_class": ESM_RECEIPT, "protocol_id": 0, "priority_flag": 0,
            "registered_delivery": 0, "data_coding": DC_GSM7,
            "short_message": gsm7_encode(text),
        }
        if self.config.receipt_tlvs:
            params["receipted_message_id"] = record.message_id
            params["message_state"] = STAT_MESSAGE_STATE[stat]
            if err:
                # §5.3.2.31: network type (3 = GSM) then a 2-octet error code.
                params["network_error_code"] = bytes((3,)) + err.to_bytes(2, "big")
        item = Outgoing(f"dlr-{record.message_id}", "receipt", params,
                        system_id=record.system_id)
        self._outgoing[item.id] = item
        self._spawn(self._deliver(item, delay=self.config.receipt_delay, stat=stat))

    # -- deliver_sm out (MOs and receipts) ---------------------------------------------------------

    def _receivers(self, system_id: str | None) -> list[SmppConnection]:
        return [c for c in self._conns
                if c.bound and c.session.state in _RECEIVING
                and (system_id is None or c.info.get("system_id") == system_id)]

    async def _pick_receiver(self, system_id: str | None) -> SmppConnection:
        while True:
            candidates = self._receivers(system_id)
            if candidates:
                candidates.sort(key=lambda c: c.id)
                self._rr += 1
                return candidates[self._rr % len(candidates)]
            assert self._bind_changed is not None
            await asyncio.wait({self._bind_changed})

    def _signal_binds(self) -> None:
        fut = self._bind_changed
        if fut is not None and not fut.done():
            fut.set_result(None)
            self._bind_changed = asyncio.get_running_loop().create_future()

    def _on_inbox(self, handset: Handset) -> None:
        msg = handset.inbox[-1]
        log.info("inbox msisdn=%s inbox_id=%d from=%s parts=%d message_ids=%s text=%r",
                 handset.msisdn, msg.id, msg.source_addr, msg.parts, ",".join(msg.message_ids),
                 _preview(msg.text))
        fut = self._inbox_changed
        if fut is not None and not fut.done():
            fut.set_result(None)
            self._inbox_changed = asyncio.get_running_loop().create_future()

    async def _deliver(self, item: Outgoing, delay: float = 0.0, stat: str = "") -> None:
        """Send ``item`` until a receiver acknowledges it with ESME_ROK."""
        if delay > 0:
            await asyncio.sleep(delay)
        while True:
            conn = await self._pick_receiver(item.system_id)
            item.attempts += 1
            try:
                resp = await conn.request("deliver_sm", item.params,
                                          timeout=self.config.response_timeout)
            except ConnectionClosed:
                continue  # gone before or while sending: wait for (another) bind at once
            except NotAllowed:
                await asyncio.sleep(0.05)  # unbinding right now
                continue
            except ResponseTimeout:
                status_name = "timeout"
            else:
                status_name = st.name(resp.status)
                if resp.command == "generic_nack":
                    status_name = f"generic_nack:{status_name}"
            item.statuses.append(status_name)
            item.last_status = status_name
            self._deliver_status[status_name] += 1
            if status_name == "ESME_ROK":
                item.delivered = True
                item.delivered_to = conn.name
                item.done.set()
                if item.kind == "mo":
                    self._counts["mo_delivered"] += 1
                    log.info("mo delivered mo_id=%s conn=%s system_id=%s attempt=%d", item.id,
                             conn.name, conn.info.get("system_id"), item.attempts)
                else:
                    self._counts["receipts_sent"] += 1
                    self._outgoing.pop(item.id, None)  # only MOs are kept (for redeliver)
                    self._receipt_stats[stat] += 1
                    log.info("receipt delivered message_id=%s stat=%s conn=%s system_id=%s "
                             "attempt=%d", item.params.get("receipted_message_id")
                             or item.id.removeprefix("dlr-"), stat, conn.name, item.system_id,
                             item.attempts)
                return
            if item.kind == "mo":
                self._counts["mo_retries"] += 1
            else:
                self._counts["receipt_retries"] += 1
            log.warning("%s %s refused conn=%s status=%s attempt=%d; retry in %gs", item.kind,
                        item.id, conn.name, status_name, item.attempts,
                        self.config.mo_retry_interval)
            await asyncio.sleep(self.config.mo_retry_interval)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())


def _preview(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _fmt_outcomes(outcomes: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in outcomes.items())
