"""Sans-IO SMPP 3.4 session: bytes in → events out, calls in → bytes out. No sockets, no clock.

Shared by the gateway's ESME client, its SMPP server side and the simulator, so every edge
case (framing, bind states, windowing, timeouts) is tested once, here, without a network. The
shape follows h11: `receive_data()` returns events, `data_to_send()` drains the output, and
time is passed in (`now`) so timers are plain arithmetic: `next_deadline()` tells the I/O
layer when to call `handle_timers()`.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from gateway.smpp import codec
from gateway.smpp import status as st
from gateway.smpp.codec import Pdu


class Role(enum.Enum):
    ESME = "esme"  # the client side: binds to an SMSC
    SMSC = "smsc"  # the server side: accepts binds


class State(enum.Enum):
    OPEN = "open"  # connected, not bound (SMPP 3.4 §2.2)
    BINDING = "binding"  # ESME sent a bind, awaiting its response
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    CLOSED = "closed"  # unbound or failed; the transport should be closed


BIND_STATES = {
    "bind_transmitter": State.BOUND_TX,
    "bind_receiver": State.BOUND_RX,
    "bind_transceiver": State.BOUND_TRX,
}
_BOUND = (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)

# Which requests each side may *receive* in each state (SMPP 3.4 §2.3, table 2-1). A request
# not listed is answered with ESME_RINVBNDSTS (or ESME_RALYBND for a second bind).
_ALWAYS = frozenset({"enquire_link", "generic_nack"})
_ESME_TO_SMSC_TX = frozenset(
    {"submit_sm", "submit_multi", "data_sm", "query_sm", "cancel_sm", "replace_sm"})
_SMSC_TO_ESME_RX = frozenset({"deliver_sm", "data_sm", "alert_notification"})

RECEIVABLE: dict[Role, dict[State, frozenset[str]]] = {
    Role.SMSC: {
        State.OPEN: _ALWAYS | set(BIND_STATES),
        State.BOUND_TX: _ALWAYS | _ESME_TO_SMSC_TX | {"unbind"},
        State.BOUND_RX: _ALWAYS | {"unbind"},
        State.BOUND_TRX: _ALWAYS | _ESME_TO_SMSC_TX | {"unbind"},
    },
    Role.ESME: {
        State.OPEN: _ALWAYS | {"outbind"},
        State.BINDING: _ALWAYS,
        State.BOUND_TX: _ALWAYS | {"unbind"},
        State.BOUND_RX: _ALWAYS | _SMSC_TO_ESME_RX | {"unbind"},
        State.BOUND_TRX: _ALWAYS | _SMSC_TO_ESME_RX | {"unbind"},
    },
}
# What each side may *send*: the mirror image of what the other side may receive.
SENDABLE: dict[Role, dict[State, frozenset[str]]] = {
    Role.ESME: {s: RECEIVABLE[Role.SMSC].get(s, _ALWAYS) - set(BIND_STATES)
                for s in (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)},
    Role.SMSC: {s: RECEIVABLE[Role.ESME][s] - {"outbind"}
                for s in (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)},
}

# Not counted against the window: keep-alive and shutdown must never wait behind traffic.
_WINDOW_EXEMPT = frozenset({"enquire_link", "unbind"}) | set(BIND_STATES)
_MESSAGE_ID_RESPONSES = frozenset({"submit_sm", "deliver_sm", "data_sm"})
MAX_SEQUENCE = 0x7FFFFFFF  # SMPP 3.4 §3.2: 0x00000001 to 0x7FFFFFFF


@dataclass(slots=True)
class SessionConfig:
    window: int = 10
    response_timeout: float = 10.0
    enquire_link_interval: float = 30.0  # idle time before we probe the link
    enquire_link_timeout: float = 10.0  # no enquire_link_resp within this → link dead
    bind_timeout: float = 30.0  # SMSC side: a connection that never binds is closed
    # 16 octets is the header alone. The upper bound protects memory from a hostile or
    # broken peer; a submit_sm with a full message_payload TLV (64 KiB) fits under it.
    max_pdu_length: int = 70_000
    # Requests that timed out are remembered (oldest forgotten first) so that a response
    # arriving after its timeout is still recognised: a late submit_sm_resp still means the
    # SMSC accepted the message (issue 8).
    late_response_memory: int = 10_000
    # Slow-loris guard: a PDU whose first octets arrived this long ago and that is still
    # incomplete closes the session (the clock starts with its first octet; more trickling
    # octets do not restart it). None = no limit.
    pdu_read_timeout: float | None = None
    # Requests from the peer handed to the application and not answered yet. One more is
    # refused at once with ESME_RTHROTTLED in its own response (SMPP 3.4 §5.1.3: "ESME has
    # exceeded allowed message limits"; generic_nack is only for an invalid command_length
    # or command_id, §4.3), so a peer ignoring its window cannot queue unbounded work.
    # None = no limit.
    max_unanswered: int | None = None


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    pass


@dataclass(frozen=True, slots=True)
class RequestReceived(Event):
    """A request the application must answer with `Session.respond`."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class AlertNotification(Event):
    """ESME side: the SMSC says a mobile subscriber became available (SMPP 3.4 §4.12).

    It has no response PDU, so none is sent; the application may use it, e.g. to retry
    messages held for that subscriber."""

    pdu: Pdu

    @property
    def msisdn(self) -> str:
        return str(self.pdu.get("source_addr", ""))

    @property
    def available(self) -> int | None:
        """ms_availability_status TLV: 0 available, 1 denied, 2 unavailable; None absent."""
        value = self.pdu.get("ms_availability_status")
        return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class BindRequested(Event):
    """SMSC side: answer with `accept_bind` or `reject_bind` after checking credentials."""

    pdu: Pdu

    @property
    def system_id(self) -> str:
        return str(self.pdu.get("system_id", ""))

    @property
    def password(self) -> str:
        return str(self.pdu.get("password", ""))


@dataclass(frozen=True, slots=True)
class Pending:
    """A request in flight, with the caller's own correlation data."""

    command: str
    sequence: int
    sent_at: float
    deadline: float
    context: Any = None


@dataclass(frozen=True, slots=True)
class ResponseReceived(Event):
    pdu: Pdu  # the response, or a generic_nack for the request
    request: Pending


@dataclass(frozen=True, slots=True)
class ResponseTimedOut(Event):
    request: Pending


@dataclass(frozen=True, slots=True)
class LateResponse(Event):
    """A response to a request that had already timed out (`ResponseTimedOut` was emitted).

    It still carries the peer's answer: for a submit_sm, the message_id of a message the
    SMSC accepted. Its sequence number was kept out of reuse meanwhile, so it cannot be
    mistaken for the answer to a newer request."""

    pdu: Pdu
    request: Pending


@dataclass(frozen=True, slots=True)
class Bound(Event):
    state: State
    system_id: str  # the peer's system_id


@dataclass(frozen=True, slots=True)
class BindFailed(Event):
    status: int


@dataclass(frozen=True, slots=True)
class Unbound(Event):
    by_peer: bool


@dataclass(frozen=True, slots=True)
class LinkDead(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolError(Event):
    """Something the peer did wrong. `fatal` means the session is closed and must be dropped."""

    reason: str
    fatal: bool = False


# -- errors raised to the local caller ----------------------------------------------------------


class SessionError(Exception):
    pass


class WindowFull(SessionError):
    pass


class NotAllowed(SessionError):
    """The request is not allowed in the current bind state."""


@dataclass
class _Timers:
    last_rx: float = 0.0
    opened_at: float = 0.0
    enquire_seq: int | None = None  # our enquire_link in flight
    partial_since: float | None = None  # first octet of the PDU still incomplete


class Session:
    def __init__(self, role: Role, config: SessionConfig | None = None, *, now: float = 0.0):
        self.role = role
        self.config = config or SessionConfig()
        self.state = State.OPEN
        self.peer_system_id = ""
        self._in = bytearray()
        self._out: list[bytes] = []
        self._next_seq = 1
        self._pending: dict[int, Pending] = {}
        self._timed_out: OrderedDict[int, Pending] = OrderedDict()
        self._in_window = 0
        self._timers = _Timers(last_rx=now, opened_at=now)
        self._bind_command: str | None = None
        self._desynced = False  # a bad command_length: the byte stream is unusable
        self._unanswered: dict[int, int] = {}  # sequence -> requests awaiting our response
        self.sent_pdus = 0
        self.received_pdus = 0

    # -- state queries --------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self.state in _BOUND

    @property
    def window_free(self) -> int:
        return self.config.window - self._in_window

    @property
    def outstanding(self) -> int:
        return self._in_window

    @property
    def unanswered(self) -> int:
        """Requests from the peer handed to the application and not answered yet."""
        return sum(self._unanswered.values())

    def may_send(self, command: str) -> bool:
        return command in SENDABLE[self.role].get(self.state, _ALWAYS)

    # -- output -----------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def _emit(self, pdu: Pdu) -> None:
        self._out.append(codec.encode(pdu))
        self.sent_pdus += 1

    def _allocate_sequence(self) -> int:
        seq = self._next_seq
        # Only after 2^31 requests with one stuck in flight (or one that timed out and is
        # still remembered, so its late response stays unambiguous).
        while seq in self._pending or seq in self._timed_out:
            seq = seq % MAX_SEQUENCE + 1
        self._next_seq = seq % MAX_SEQUENCE + 1
        return seq

    # -- requests we send -------------------------------------------------------------------------

    def send_request(self, command: str, params: dict[str, Any] | None = None, *, now: float,
                     context: Any = None, timeout: float | None = None) -> int:
        """Queue a request; returns its sequence number. Raises NotAllowed / WindowFull."""
        if command in BIND_STATES:
            raise NotAllowed("use bind() to bind")
        if not self.may_send(command):
            raise NotAllowed(f"{command} not allowed in state {self.state.value}")
        counted = command not in _WINDOW_EXEMPT
        if counted and self._in_window >= self.config.window:
            raise WindowFull(f"{self._in_window} requests outstanding")
        return self._send(command, params, now, context, timeout, counted)

    def _send(self, command: str, params: dict[str, Any] | None, now: float, context: Any,
              timeout: float | None, counted: bool) -> int:
        seq = self._allocate_sequence()
        self._emit(Pdu(command, seq, 0, dict(params or {})))
        deadline = now + (self.config.response_timeout if timeout is None else timeout)
        self._pending[seq] = Pending(command, seq, now, deadline, context)
        if counted:
            self._in_window += 1
        return seq

    def bind(self, command: str, *, system_id: str, password: str, now: float,
             system_type: str = "", address_range: str = "") -> int:
        if self.role is not Role.ESME:
            raise NotAllowed("only an ESME binds")
        if command not in BIND_STATES:
            raise ValueError(f"not a bind command: {command}")
        if self.state is not State.OPEN:
            raise NotAllowed(f"cannot bind in state {self.state.value}")
        self.state = State.BINDING
        self._bind_command = command
        params = {"system_id": system_id, "password": password, "system_type": system_type,
                  "interface_version": 0x34, "address_range": address_range}
        return self._send(command, params, now, None, None, counted=False)

    def unbind(self, *, now: float) -> int | None:
        """Start a graceful unbind. Returns None when not bound (nothing to do)."""
        if not self.bound:
            self.state = State.CLOSED
            return None
        return self._send("unbind", None, now, None, None, counted=False)

    # -- responses we send ------------------------------------------------------------------------

    def respond(self, request: Pdu, status: int = st.ESME_ROK,
                params: dict[str, Any] | None = None) -> None:
        """The application's answer to a `RequestReceived`."""
        self._answered(request.sequence)
        self._respond(request, status, params)

    def _respond(self, request: Pdu, status: int = st.ESME_ROK,
                 params: dict[str, Any] | None = None) -> None:
        # Answers the session gives itself (enquire_link, unbind, refusals, binds) must not
        # count as answers to the application's requests: a peer reusing a pending request's
        # sequence number in an enquire_link would otherwise slip past `max_unanswered`.
        if self.state is State.CLOSED and request.command != "unbind":
            return  # the peer has gone; it will redeliver unanswered requests
        response = codec.response_name(request.command)
        if response not in codec.COMMAND_IDS:
            # alert_notification and outbind have no response PDU (SMPP 3.4 §4.12, §4.1.7):
            # nothing to acknowledge, and a refusal can only be a generic_nack.
            if status != st.ESME_ROK:
                self._emit(Pdu("generic_nack", request.sequence, status))
            return
        body = dict(params or {})
        if request.command in ("submit_sm", "deliver_sm", "data_sm") and "message_id" not in body:
            body["message_id"] = ""
        self._emit(Pdu(response, request.sequence, status, body))

    def accept_bind(self, request: Pdu, system_id: str) -> None:
        if self.state is not State.OPEN:
            self._respond(request, st.ESME_RALYBND, {"system_id": system_id})
            return
        self.state = BIND_STATES[request.command]
        self.peer_system_id = str(request.get("system_id", ""))
        self._respond(request, st.ESME_ROK, {"system_id": system_id,
                                             "sc_interface_version": 0x34})

    def reject_bind(self, request: Pdu, status: int, system_id: str = "") -> None:
        self._respond(request, status, {"system_id": system_id})

    # -- input ------------------------------------------------------------------------------------

    def receive_data(self, data: bytes, *, now: float) -> list[Event]:
        if self._desynced or (self.state is State.CLOSED and not self._pending):
            return []
        self._in += data
        events: list[Event] = []
        buf = self._in
        while len(buf) >= 4:
            if self.state is State.CLOSED and not self._pending:
                # Closed by a frame of this same chunk (say an unbind): what follows is
                # dropped, exactly as it would be had it come in the next read.
                buf.clear()
                break
            length = int.from_bytes(buf[0:4], "big")
            if length < codec.HEADER_LEN or length > self.config.max_pdu_length:
                # The stream cannot be resynchronised after a bad length (SMPP 3.4 §3.2).
                self.state = State.CLOSED
                self._desynced = True
                buf.clear()
                events.append(ProtocolError(
                    f"command_length {length} outside 16..{self.config.max_pdu_length}",
                    fatal=True))
                break
            if len(buf) < length:
                break
            self._timers.partial_since = None
            frame = bytes(buf[:length])
            del buf[:length]
            self._timers.last_rx = now
            self.received_pdus += 1
            self._handle_frame(frame, now, events)
        if not buf:
            self._timers.partial_since = None
        elif self._timers.partial_since is None:
            self._timers.partial_since = now
        return events

    def _handle_frame(self, frame: bytes, now: float, events: list[Event]) -> None:
        try:
            pdu = codec.decode(frame)
        except codec.DecodeError as exc:
            self._handle_undecodable(exc, events)
            return
        if pdu.is_response:
            self._handle_response(pdu, events)
        else:
            self._handle_request(pdu, now, events)

    def _handle_undecodable(self, exc: codec.DecodeError, events: list[Event]) -> None:
        pending = self._pending.get(exc.sequence)
        if not codec.is_request_id(exc.command_id) and pending is not None:
            # A garbled response still ends its request: report it as a nack.
            self._complete(exc.sequence)
            nack = Pdu("generic_nack", exc.sequence, exc.status)
            events.append(ResponseReceived(nack, pending))
            events.append(ProtocolError(f"undecodable response: {exc}"))
            return
        command = codec.COMMAND_NAMES.get(exc.command_id, "")
        response = codec.response_name(command)
        if exc.in_body and codec.is_request_id(exc.command_id) and response in codec.COMMAND_IDS:
            # A sound header with a bad field (say a 16-octet system_id, §4.1.1 allows 15 + NUL):
            # the command's own response with the field's status (ESME_RINVSYSID,
            # ESME_RINVPASWD, ESME_RINVDSTADR ... §5.1.3), no body (§3.3 / §4.1.2, §4.4.2).
            self._emit(Pdu(response, exc.sequence, exc.status))
        elif codec.is_request_id(exc.command_id) or exc.command_id not in codec.COMMAND_NAMES:
            self._emit(Pdu("generic_nack", exc.sequence, exc.status))
        events.append(ProtocolError(f"undecodable PDU seq={exc.sequence}: {exc}"))

    def _handle_request(self, pdu: Pdu, now: float, events: list[Event]) -> None:
        cmd = pdu.command
        allowed = RECEIVABLE[self.role].get(self.state, frozenset())
        if cmd not in allowed:
            if cmd == "generic_nack":
                return
            status = st.ESME_RALYBND if cmd in BIND_STATES and self.bound else st.ESME_RINVBNDSTS
            self._respond(pdu, status)
            events.append(ProtocolError(f"{cmd} not allowed in state {self.state.value}"))
            return
        if cmd == "enquire_link":
            self._respond(pdu)
        elif cmd == "generic_nack":
            # A nack that is a request names no request of ours it could answer.
            events.append(ProtocolError(f"generic_nack status={st.name(pdu.status)}"))
        elif cmd == "alert_notification":
            events.append(AlertNotification(pdu))  # §4.12: no response, ever
        elif cmd in BIND_STATES:
            events.append(BindRequested(pdu))
        elif cmd == "unbind":
            self._respond(pdu)
            self.state = State.CLOSED
            events.append(Unbound(by_peer=True))
        elif self.config.max_unanswered is not None \
                and self.unanswered >= self.config.max_unanswered \
                and codec.response_name(cmd) in codec.COMMAND_IDS:
            self._emit(Pdu(codec.response_name(cmd), pdu.sequence, st.ESME_RTHROTTLED,
                           {"message_id": ""} if cmd in _MESSAGE_ID_RESPONSES else {}))
            events.append(ProtocolError(f"{cmd} seq={pdu.sequence} refused ESME_RTHROTTLED: "
                                        f"{self.unanswered} requests unanswered"))
        else:
            self._unanswered[pdu.sequence] = self._unanswered.get(pdu.sequence, 0) + 1
            events.append(RequestReceived(pdu))

    def _answered(self, seq: int) -> None:
        count = self._unanswered.pop(seq, 0)
        if count > 1:
            self._unanswered[seq] = count - 1

    def _complete(self, seq: int) -> Pending | None:
        pending = self._pending.pop(seq, None)
        if pending is not None and pending.command not in _WINDOW_EXEMPT:
            self._in_window -= 1
        return pending

    def _handle_response(self, pdu: Pdu, events: list[Event]) -> None:
        pending = self._complete(pdu.sequence)
        if pending is None:
            late = self._timed_out.pop(pdu.sequence, None)
            if late is not None:
                events.append(LateResponse(pdu, late))
            else:
                events.append(ProtocolError(f"{pdu.command} seq={pdu.sequence} answers nothing"))
            return
        if pdu.command != "generic_nack" and pdu.command != codec.response_name(pending.command):
            events.append(ProtocolError(
                f"{pdu.command} seq={pdu.sequence} answers a {pending.command}"))
        if pending.command in BIND_STATES:
            if pdu.status == st.ESME_ROK and pdu.command != "generic_nack":
                self.state = BIND_STATES[pending.command]
                self.peer_system_id = str(pdu.get("system_id", ""))
                events.append(Bound(self.state, self.peer_system_id))
            else:
                self.state = State.CLOSED
                events.append(BindFailed(pdu.status or st.ESME_RBINDFAIL))
            return
        if pending.command == "enquire_link":
            self._timers.enquire_seq = None
            return
        if pending.command == "unbind":
            self.state = State.CLOSED
            events.append(Unbound(by_peer=False))
            return
        events.append(ResponseReceived(pdu, pending))

    # -- timers -----------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        if self.state is State.CLOSED and not self._pending:
            return None
        deadlines = [p.deadline for p in self._pending.values()]
        t = self._timers
        if self.bound and t.enquire_seq is None:
            deadlines.append(t.last_rx + self.config.enquire_link_interval)
        if self.role is Role.SMSC and self.state is State.OPEN:
            deadlines.append(t.opened_at + self.config.bind_timeout)
        if t.partial_since is not None and self.config.pdu_read_timeout is not None:
            deadlines.append(t.partial_since + self.config.pdu_read_timeout)
        return min(deadlines) if deadlines else None

    def handle_timers(self, *, now: float) -> list[Event]:
        events: list[Event] = []
        t = self._timers
        for seq in [s for s, p in self._pending.items() if p.deadline <= now]:
            pending = self._complete(seq)
            assert pending is not None
            if pending.command == "enquire_link":
                t.enquire_seq = None
                self.state = State.CLOSED
                events.append(LinkDead(f"no enquire_link_resp within "
                                       f"{self.config.enquire_link_timeout:g}s"))
            elif pending.command in BIND_STATES:
                self.state = State.CLOSED
                events.append(BindFailed(st.ESME_RBINDFAIL))
            elif pending.command == "unbind":
                self.state = State.CLOSED
                events.append(Unbound(by_peer=False))
            else:
                self._remember_timed_out(pending)
                events.append(ResponseTimedOut(pending))
        if self.state is State.CLOSED:
            return events
        timeout = self.config.pdu_read_timeout
        if timeout is not None and t.partial_since is not None \
                and now >= t.partial_since + timeout:
            self.state = State.CLOSED
            self._desynced = True
            self._in.clear()
            events.append(ProtocolError(
                f"PDU incomplete {now - t.partial_since:.1f}s after its first octet "
                f"(read timeout {timeout:g}s)", fatal=True))
        elif self.role is Role.SMSC and self.state is State.OPEN \
                and now >= t.opened_at + self.config.bind_timeout:
            self.state = State.CLOSED
            events.append(ProtocolError(
                f"no bind within {self.config.bind_timeout:g}s", fatal=True))
        elif self.bound and t.enquire_seq is None \
                and now >= t.last_rx + self.config.enquire_link_interval:
            t.enquire_seq = self._send("enquire_link", None, now, None,
                                       self.config.enquire_link_timeout, counted=False)
        return events

    def _remember_timed_out(self, pending: Pending) -> None:
        self._timed_out[pending.sequence] = pending
        while len(self._timed_out) > self.config.late_response_memory:
            self._timed_out.popitem(last=False)

    def pending_requests(self) -> list[Pending]:
        return list(self._pending.values())

    def fail_all_pending(self) -> list[Pending]:
        """The transport is gone: every request in flight is now unanswered."""
        pending = [p for p in self._pending.values() if p.command not in _WINDOW_EXEMPT]
        self._pending.clear()
        self._timed_out.clear()  # sequence numbers mean nothing on another connection
        self._in_window = 0
        self.state = State.CLOSED
        return pending

