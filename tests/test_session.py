"""Sans-IO session: two Sessions wired back to back, time passed in explicitly."""

from __future__ import annotations

import struct

import pytest

from gateway.smpp import codec
from gateway.smpp import status as st
from gateway.smpp.codec import Pdu
from gateway.smpp.session import (
    MAX_SEQUENCE,
    AlertNotification,
    BindFailed,
    BindRequested,
    Bound,
    Event,
    LateResponse,
    LinkDead,
    NotAllowed,
    ProtocolError,
    RequestReceived,
    ResponseReceived,
    ResponseTimedOut,
    Role,
    Session,
    SessionConfig,
    State,
    Unbound,
    WindowFull,
)

SUBMIT = {"source_addr": "Shop", "destination_addr": "4915112345678", "short_message": b"hi"}


def _decode_all(data: bytes) -> list[Pdu]:
    pdus = []
    while data:
        length = struct.unpack(">L", data[:4])[0]
        pdus.append(codec.decode(data[:length]))
        data = data[length:]
    return pdus


def transfer(src: Session, dst: Session, now: float = 0.0) -> list[Event]:
    return dst.receive_data(src.data_to_send(), now=now)


def of(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def make_pair(esme_cfg: SessionConfig | None = None, smsc_cfg: SessionConfig | None = None,
              ) -> tuple[Session, Session]:
    return Session(Role.ESME, esme_cfg, now=0.0), Session(Role.SMSC, smsc_cfg, now=0.0)


def bind(esme: Session, smsc: Session, command: str = "bind_transceiver",
         now: float = 0.0) -> tuple[list[Event], list[Event]]:
    esme.bind(command, system_id="test", password="secret", now=now)
    assert esme.state is State.BINDING
    smsc_events = transfer(esme, smsc, now)
    (req,) = of(smsc_events, BindRequested)
    assert (req.system_id, req.password) == ("test", "secret")
    smsc.accept_bind(req.pdu, "SMSC")
    return transfer(smsc, esme, now), smsc_events


def bound_pair(command: str = "bind_transceiver", esme_cfg: SessionConfig | None = None,
               smsc_cfg: SessionConfig | None = None) -> tuple[Session, Session]:
    esme, smsc = make_pair(esme_cfg, smsc_cfg)
    bind(esme, smsc, command)
    return esme, smsc


# -- binding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "state"), [("bind_transmitter", State.BOUND_TX),
                                                ("bind_receiver", State.BOUND_RX),
                                                ("bind_transceiver", State.BOUND_TRX)])
def test_bind_accepted(command: str, state: State) -> None:
    esme, smsc = make_pair()
    esme_events, _ = bind(esme, smsc, command)
    assert esme_events == [Bound(state, "SMSC")]
    assert esme.state is state and smsc.state is state
    assert esme.bound and smsc.bound
    assert esme.peer_system_id == "SMSC" and smsc.peer_system_id == "test"
    assert esme.pending_requests() == []


def test_bind_refused() -> None:
    esme, smsc = make_pair()
    esme.bind("bind_transceiver", system_id="test", password="wrong", now=0)
    (req,) = of(transfer(esme, smsc), BindRequested)
    smsc.reject_bind(req.pdu, st.ESME_RINVPASWD, "SMSC")
    (resp,) = _decode_all(smsc.data_to_send())
    assert (resp.command, resp.status, resp.sequence) == (
        "bind_transceiver_resp", st.ESME_RINVPASWD, req.pdu.sequence)
    events = esme.receive_data(codec.encode(resp), now=0)
    assert events == [BindFailed(st.ESME_RINVPASWD)]
    assert esme.state is State.CLOSED
    assert not smsc.bound
    assert esme.next_deadline() is None


def test_bind_generic_nacked_fails() -> None:
    esme, _ = make_pair()
    seq = esme.bind("bind_transmitter", system_id="a", password="b", now=0)
    esme.data_to_send()
    events = esme.receive_data(codec.encode(Pdu("generic_nack", seq, st.ESME_RINVCMDID)), now=0)
    assert events == [BindFailed(st.ESME_RINVCMDID)]
    assert esme.state is State.CLOSED


def test_bind_response_timeout() -> None:
    esme, _ = make_pair(SessionConfig(response_timeout=5))
    esme.bind("bind_transmitter", system_id="a", password="b", now=0)
    assert esme.next_deadline() == 5
    assert esme.handle_timers(now=4.9) == []
    assert esme.handle_timers(now=5) == [BindFailed(st.ESME_RBINDFAIL)]
    assert esme.state is State.CLOSED


def test_second_bind_after_bound() -> None:
    esme, smsc = bound_pair()
    with pytest.raises(NotAllowed):
        esme.bind("bind_transceiver", system_id="test", password="secret", now=0)
    raw = codec.encode(Pdu("bind_transmitter", 55, 0, {"system_id": "test", "password": "x"}))
    events = smsc.receive_data(raw, now=1)
    assert of(events, BindRequested) == []
    assert len(of(events, ProtocolError)) == 1 and not events[0].fatal
    (resp,) = _decode_all(smsc.data_to_send())
    assert (resp.command, resp.sequence, resp.status) == (
        "bind_transmitter_resp", 55, st.ESME_RALYBND)
    assert smsc.state is State.BOUND_TRX


def test_only_esme_binds() -> None:
    _, smsc = make_pair()
    with pytest.raises(NotAllowed):
        smsc.bind("bind_transceiver", system_id="a", password="b", now=0)


# -- bind states -----------------------------------------------------------------------------------


def _single_response(session: Session) -> Pdu:
    (resp,) = _decode_all(session.data_to_send())
    return resp


def test_submit_before_bind() -> None:
    esme, smsc = make_pair()
    with pytest.raises(NotAllowed):
        esme.send_request("submit_sm", SUBMIT, now=0)
    events = smsc.receive_data(codec.encode(Pdu("submit_sm", 9, 0, SUBMIT)), now=0)
    assert of(events, RequestReceived) == []
    assert len(of(events, ProtocolError)) == 1
    resp = _single_response(smsc)
    assert (resp.command, resp.sequence, resp.status) == ("submit_sm_resp", 9,
                                                          st.ESME_RINVBNDSTS)
    assert smsc.state is State.OPEN


def test_submit_on_receiver_bind() -> None:
    esme, smsc = bound_pair("bind_receiver")
    with pytest.raises(NotAllowed):
        esme.send_request("submit_sm", SUBMIT, now=0)
    events = smsc.receive_data(codec.encode(Pdu("submit_sm", 9, 0, SUBMIT)), now=0)
    assert of(events, RequestReceived) == []
    resp = _single_response(smsc)
    assert (resp.command, resp.sequence, resp.status) == ("submit_sm_resp", 9,
                                                          st.ESME_RINVBNDSTS)
    # ... while deliver_sm flows the other way.
    smsc.send_request("deliver_sm", SUBMIT, now=0)
    (ev,) = transfer(smsc, esme)
    assert isinstance(ev, RequestReceived) and ev.pdu.command == "deliver_sm"


def test_deliver_to_transmitter() -> None:
    esme, smsc = bound_pair("bind_transmitter")
    with pytest.raises(NotAllowed):
        smsc.send_request("deliver_sm", SUBMIT, now=0)
    events = esme.receive_data(codec.encode(Pdu("deliver_sm", 3, 0, SUBMIT)), now=0)
    assert of(events, RequestReceived) == []
    resp = _single_response(esme)
    assert (resp.command, resp.sequence, resp.status) == ("deliver_sm_resp", 3,
                                                          st.ESME_RINVBNDSTS)


@pytest.mark.parametrize("command", ["bind_receiver", "bind_transceiver"])
def test_alert_notification_is_accepted_without_a_response(command: str) -> None:
    # SMPP 3.4 §4.12: alert_notification has no response PDU; a generic_nack is wrong.
    esme, _smsc = bound_pair(command)
    raw = codec.encode(Pdu("alert_notification", 9, 0, {
        "source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "8613800000001",
        "esme_addr": "10690", "ms_availability_status": 0}))
    (ev,) = esme.receive_data(raw, now=0)
    assert isinstance(ev, AlertNotification)
    assert (ev.msisdn, ev.available, ev.pdu.sequence) == ("8613800000001", 0, 9)
    assert esme.data_to_send() == b""
    assert esme.bound


@pytest.mark.parametrize("command", ["alert_notification", "outbind"])
def test_unexpected_request_without_response_type(command: str) -> None:
    # alert_notification and outbind have no *_resp; refusing them must not crash.
    esme, smsc = bound_pair("bind_transmitter")
    params = {"source_addr": "1", "esme_addr": "2"} if command == "alert_notification" else {}
    raw = codec.encode(Pdu(command, 8, 0, params))
    for receiver in (esme, smsc):
        events = receiver.receive_data(raw, now=0)
        assert len(of(events, ProtocolError)) == 1
        resp = _single_response(receiver)
        assert (resp.command, resp.sequence, resp.status) == ("generic_nack", 8,
                                                              st.ESME_RINVBNDSTS)


def test_submit_round_trip_and_response() -> None:
    esme, smsc = bound_pair()
    seq = esme.send_request("submit_sm", SUBMIT, now=1, context={"msg": 1})
    (ev,) = transfer(esme, smsc, 1)
    assert isinstance(ev, RequestReceived)
    assert ev.pdu.sequence == seq and ev.pdu.params["destination_addr"] == "4915112345678"
    smsc.respond(ev.pdu, params={"message_id": "m-1"})
    (resp,) = transfer(smsc, esme, 2)
    assert isinstance(resp, ResponseReceived)
    assert resp.pdu.command == "submit_sm_resp" and resp.pdu.params["message_id"] == "m-1"
    assert resp.request.context == {"msg": 1} and resp.request.sent_at == 1
    assert esme.outstanding == 0


# -- window and timeouts ---------------------------------------------------------------------------


def test_window() -> None:
    esme, smsc = bound_pair(esme_cfg=SessionConfig(window=2))
    esme.send_request("submit_sm", SUBMIT, now=0)
    esme.send_request("submit_sm", SUBMIT, now=0)
    assert esme.window_free == 0
    with pytest.raises(WindowFull):
        esme.send_request("submit_sm", SUBMIT, now=0)
    # Keep-alives are not counted against the window.
    esme.send_request("enquire_link", now=0)
    reqs = of(transfer(esme, smsc), RequestReceived)
    assert len(reqs) == 2
    smsc.respond(reqs[0].pdu, params={"message_id": "a"})
    assert len(of(transfer(smsc, esme), ResponseReceived)) == 1
    assert esme.window_free == 1
    esme.send_request("submit_sm", SUBMIT, now=0)
    with pytest.raises(WindowFull):
        esme.send_request("submit_sm", SUBMIT, now=0)


def test_response_timeout() -> None:
    esme, smsc = bound_pair(esme_cfg=SessionConfig(response_timeout=10,
                                                enquire_link_interval=1000))
    seq = esme.send_request("submit_sm", SUBMIT, now=100, context="ctx-1")
    esme.send_request("submit_sm", SUBMIT, now=101, context="ctx-2", timeout=3)
    assert esme.next_deadline() == 104
    assert esme.handle_timers(now=103.9) == []
    (ev,) = esme.handle_timers(now=104)
    assert isinstance(ev, ResponseTimedOut) and ev.request.context == "ctx-2"
    (ev,) = esme.handle_timers(now=110)
    assert isinstance(ev, ResponseTimedOut)
    assert (ev.request.context, ev.request.sequence, ev.request.command) == (
        "ctx-1", seq, "submit_sm")
    assert esme.outstanding == 0 and esme.bound
    # A late response still carries the SMSC's answer: surfaced with its request (issue 8).
    (req, _) = of(transfer(esme, smsc), RequestReceived)
    smsc.respond(req.pdu, params={"message_id": "late"})
    (late,) = transfer(smsc, esme, 111)
    assert isinstance(late, LateResponse)
    assert late.request.context == "ctx-1" and late.pdu.params["message_id"] == "late"
    assert esme.bound and esme.outstanding == 0


def test_late_response_only_once_and_unknown_sequences_still_reported() -> None:
    esme, smsc = bound_pair(esme_cfg=SessionConfig(response_timeout=1,
                                                enquire_link_interval=1000))
    esme.send_request("submit_sm", SUBMIT, now=0, context="a")
    (req,) = of(transfer(esme, smsc), RequestReceived)
    (timed_out,) = esme.handle_timers(now=1)
    assert isinstance(timed_out, ResponseTimedOut)
    smsc.respond(req.pdu, params={"message_id": "x"})
    smsc.respond(req.pdu, params={"message_id": "x"})  # a duplicate answer
    late, dup = transfer(smsc, esme, 2)
    assert isinstance(late, LateResponse) and isinstance(dup, ProtocolError)
    assert "answers nothing" in dup.reason and not dup.fatal


def test_timed_out_sequence_is_not_reused_while_remembered() -> None:
    esme, _smsc = bound_pair(esme_cfg=SessionConfig(response_timeout=1, window=1,
                                                enquire_link_interval=1000))
    esme._next_seq = MAX_SEQUENCE  # wrap right after the first request
    seq = esme.send_request("submit_sm", SUBMIT, now=0, context="old")
    esme.handle_timers(now=1)
    esme._next_seq = seq  # as if the counter came round again
    new_seq = esme.send_request("submit_sm", SUBMIT, now=1, context="new")
    assert new_seq != seq


def test_late_response_memory_is_bounded() -> None:
    esme, smsc = bound_pair(esme_cfg=SessionConfig(response_timeout=1, window=5,
                                                late_response_memory=2,
                                                enquire_link_interval=1000))
    for i in range(3):
        esme.send_request("submit_sm", SUBMIT, now=0, context=i)
    reqs = of(transfer(esme, smsc), RequestReceived)
    assert len(esme.handle_timers(now=1)) == 3
    for r in reqs:
        smsc.respond(r.pdu, params={"message_id": "x"})
    events = transfer(smsc, esme, 2)
    assert [type(e) for e in events] == [ProtocolError, LateResponse, LateResponse]
    assert [e.request.context for e in events[1:]] == [1, 2]


def test_enquire_link_keepalive() -> None:
    cfg = SessionConfig(enquire_link_interval=30, enquire_link_timeout=10)
    esme, smsc = bound_pair(esme_cfg=cfg, smsc_cfg=SessionConfig(enquire_link_interval=1000))
    assert esme.next_deadline() == 30
    assert esme.handle_timers(now=29) == []
    assert esme.data_to_send() == b""
    assert esme.handle_timers(now=30) == []
    assert esme.handle_timers(now=31) == []  # only one in flight
    (probe,) = _decode_all(esme.data_to_send())
    assert probe.command == "enquire_link"
    assert esme.next_deadline() == 40
    assert smsc.receive_data(codec.encode(probe), now=32) == []  # answered automatically
    assert esme.receive_data(smsc.data_to_send(), now=33) == []
    assert esme.pending_requests() == []
    assert esme.next_deadline() == 63  # idle interval restarts from the last PDU received
    assert esme.handle_timers(now=50) == []
    assert esme.data_to_send() == b""


def test_enquire_link_unanswered_link_dead() -> None:
    esme, _ = bound_pair(esme_cfg=SessionConfig(enquire_link_interval=30,
                                                enquire_link_timeout=10))
    esme.handle_timers(now=30)
    assert _decode_all(esme.data_to_send())[0].command == "enquire_link"
    assert esme.handle_timers(now=39.9) == []
    events = esme.handle_timers(now=40)
    assert len(of(events, LinkDead)) == 1
    assert esme.state is State.CLOSED


def test_traffic_postpones_enquire_link() -> None:
    esme, smsc = bound_pair(esme_cfg=SessionConfig(enquire_link_interval=30))
    smsc.send_request("deliver_sm", SUBMIT, now=20)
    transfer(smsc, esme, 20)
    assert esme.next_deadline() == 50
    assert esme.handle_timers(now=30) == []
    assert esme.data_to_send() == b""


def test_smsc_bind_timeout() -> None:
    smsc = Session(Role.SMSC, SessionConfig(bind_timeout=30), now=5)
    assert smsc.next_deadline() == 35
    assert smsc.handle_timers(now=34) == []
    (ev,) = smsc.handle_timers(now=35)
    assert isinstance(ev, ProtocolError) and ev.fatal
    assert smsc.state is State.CLOSED
    assert smsc.next_deadline() is None


def test_bound_smsc_has_no_bind_timeout() -> None:
    _esme, smsc = bound_pair(smsc_cfg=SessionConfig(bind_timeout=30, enquire_link_interval=100))
    assert smsc.next_deadline() == 100
    assert smsc.handle_timers(now=31) == []
    assert smsc.bound


# -- malformed input -------------------------------------------------------------------------------


def test_generic_nack_for_unknown_command() -> None:
    _, smsc = bound_pair()
    events = smsc.receive_data(struct.pack(">LLLL", 20, 0x00000099, 0, 4711) + b"abcd", now=0)
    (err,) = events
    assert isinstance(err, ProtocolError) and not err.fatal
    resp = _single_response(smsc)
    assert (resp.command, resp.sequence, resp.status) == ("generic_nack", 4711,
                                                          st.ESME_RINVCMDID)
    assert smsc.bound


def test_request_with_a_bad_field_gets_its_own_response_with_the_status() -> None:
    # The header is sound, a field is not: submit_sm_resp ESME_RINVSRCADR, not generic_nack
    # (SMPP 3.4 §4.3: generic_nack answers header faults only).
    _esme, smsc = bound_pair()
    body = b"\x00\x01\x01" + b"1" * 25 + b"\x00"
    smsc.receive_data(struct.pack(">LLLL", 16 + len(body), 4, 0, 12) + body, now=0)
    resp = _single_response(smsc)
    assert (resp.command, resp.sequence, resp.status) == ("submit_sm_resp", 12,
                                                          st.ESME_RINVSRCADR)


def _raw_bind(command_id: int, system_id: bytes, password: bytes, seq: int = 7) -> bytes:
    body = system_id + b"\x00" + password + b"\x00" + b"\x00" + b"\x34\x00\x00\x00"
    return struct.pack(">LLLL", 16 + len(body), command_id, 0, seq) + body


@pytest.mark.parametrize(("system_id", "password", "status"), [
    (b"s" * 16, b"secret", st.ESME_RINVSYSID),  # §4.1.1: 15 octets + NUL at most
    (b"test", b"p" * 9, st.ESME_RINVPASWD),  # §4.1.1: 8 octets + NUL at most
])
@pytest.mark.parametrize("command", ["bind_transmitter", "bind_receiver", "bind_transceiver"])
def test_overlong_bind_credentials_get_a_bind_resp(system_id: bytes, password: bytes,
                                                   status: int, command: str) -> None:
    smsc = Session(Role.SMSC, now=0.0)
    events = smsc.receive_data(_raw_bind(codec.COMMAND_IDS[command], system_id, password),
                               now=0)
    assert of(events, BindRequested) == [] and len(of(events, ProtocolError)) == 1
    resp = _single_response(smsc)
    assert (resp.command, resp.sequence, resp.status) == (f"{command}_resp", 7, status)
    assert smsc.state is State.OPEN  # not bound; a correct bind may follow
    ok = _raw_bind(codec.COMMAND_IDS[command], b"test", b"secret", seq=8)
    (req,) = of(smsc.receive_data(ok, now=1), BindRequested)
    assert req.system_id == "test"


def test_esme_sees_bind_failed_for_the_bind_resp_error() -> None:
    esme, smsc = make_pair()
    esme.bind("bind_transceiver", system_id="test", password="secret", now=0)
    raw = esme.data_to_send()
    # Make the system_id 16 octets on the wire (our encoder would refuse to).
    raw = raw.replace(b"test\x00", b"t" * 16 + b"\x00")
    raw = struct.pack(">L", len(raw)) + raw[4:]
    smsc.receive_data(raw, now=0)
    (failed,) = transfer(smsc, esme)
    assert isinstance(failed, BindFailed) and failed.status == st.ESME_RINVSYSID


def test_undecodable_response_ends_its_request() -> None:
    esme, _smsc = bound_pair()
    seq = esme.send_request("submit_sm", SUBMIT, now=0, context="c")
    esme.data_to_send()
    garbled = struct.pack(">LLLL", 19, codec.COMMAND_IDS["submit_sm_resp"], 0, seq) + b"abc"
    events = esme.receive_data(garbled, now=0)
    (resp,) = of(events, ResponseReceived)
    assert resp.pdu.command == "generic_nack" and resp.request.context == "c"
    assert len(of(events, ProtocolError)) == 1
    assert esme.outstanding == 0
    assert esme.data_to_send() == b""  # responses are never nacked


@pytest.mark.parametrize("length", [0, 15, 70_001, 0xFFFFFFFF])
def test_bad_command_length_is_fatal(length: int) -> None:
    esme, smsc = bound_pair(smsc_cfg=SessionConfig(max_pdu_length=70_000))
    esme.send_request("submit_sm", SUBMIT, now=0)
    events = smsc.receive_data(struct.pack(">LLLL", length, 4, 0, 1), now=0)
    (err,) = events
    assert isinstance(err, ProtocolError) and err.fatal
    assert smsc.state is State.CLOSED
    assert smsc.receive_data(esme.data_to_send(), now=0) == []


def test_no_resync_after_fatal_framing_error() -> None:
    # Pending requests must not revive a stream that cannot be resynchronised.
    esme, _smsc = bound_pair()
    seq = esme.send_request("submit_sm", SUBMIT, now=0)
    (err,) = esme.receive_data(b"\x00\x00\x00\x05", now=0)
    assert err.fatal
    late = codec.encode(Pdu("submit_sm_resp", seq, 0, {"message_id": "x"}))
    assert esme.receive_data(late, now=0) == []


def test_max_pdu_length_accepted() -> None:
    esme, smsc = bound_pair(smsc_cfg=SessionConfig(max_pdu_length=70_000))
    payload = b"p" * 60_000
    esme.send_request("submit_sm", {"source_addr": "1", "destination_addr": "2",
                                    "message_payload": payload}, now=0)
    (ev,) = transfer(esme, smsc)
    assert isinstance(ev, RequestReceived) and ev.pdu.params["message_payload"] == payload


# -- framing ---------------------------------------------------------------------------------------


def test_pdu_split_byte_by_byte() -> None:
    esme, smsc = make_pair()
    esme.bind("bind_transceiver", system_id="test", password="secret", now=0)
    data = esme.data_to_send()
    for i in range(len(data) - 1):
        assert smsc.receive_data(data[i:i + 1], now=0) == []
    (ev,) = smsc.receive_data(data[-1:], now=0)
    assert isinstance(ev, BindRequested) and ev.system_id == "test"
    smsc.accept_bind(ev.pdu, "SMSC")
    resp = smsc.data_to_send()
    events: list[Event] = []
    for i in range(len(resp)):
        events += esme.receive_data(resp[i:i + 1], now=0)
    assert events == [Bound(State.BOUND_TRX, "SMSC")]


def test_many_pdus_in_one_call() -> None:
    esme, smsc = bound_pair(esme_cfg=SessionConfig(window=100))
    seqs = [esme.send_request("submit_sm", {**SUBMIT, "short_message": b"m%d" % i}, now=0)
            for i in range(50)]
    data = esme.data_to_send()
    cut = len(data) // 2 + 3  # and a second call that starts mid-PDU
    events = smsc.receive_data(data[:cut], now=0) + smsc.receive_data(data[cut:], now=0)
    assert [e.pdu.sequence for e in events] == seqs
    assert [e.pdu.params["short_message"] for e in events] == [b"m%d" % i for i in range(50)]
    for e in events:
        smsc.respond(e.pdu, params={"message_id": str(e.pdu.sequence)})
    responses = transfer(smsc, esme)
    assert [r.pdu.params["message_id"] for r in responses] == [str(s) for s in seqs]
    assert esme.outstanding == 0
    assert smsc.received_pdus == 51 and esme.sent_pdus == 51


def test_sequence_wraps() -> None:
    esme, _smsc = bound_pair()
    esme._next_seq = MAX_SEQUENCE - 1
    seqs = [esme.send_request("enquire_link", now=0) for _ in range(4)]
    assert seqs == [MAX_SEQUENCE - 1, MAX_SEQUENCE, 1, 2]
    assert [p.sequence for p in _decode_all(esme.data_to_send())] == seqs


def test_sequence_wrap_skips_sequences_in_flight() -> None:
    esme, _smsc = bound_pair()
    first = esme.send_request("submit_sm", SUBMIT, now=0)  # 2, still pending
    esme._next_seq = MAX_SEQUENCE
    assert esme.send_request("enquire_link", now=0) == MAX_SEQUENCE
    assert esme.send_request("enquire_link", now=0) == 1
    assert esme.send_request("enquire_link", now=0) == first + 1
    assert len({p.sequence for p in esme.pending_requests()}) == 4


# -- unbinding -------------------------------------------------------------------------------------


def test_unbind_by_esme() -> None:
    esme, smsc = bound_pair()
    esme.unbind(now=0)
    assert transfer(esme, smsc) == [Unbound(by_peer=True)]
    assert smsc.state is State.CLOSED
    assert transfer(smsc, esme) == [Unbound(by_peer=False)]
    assert esme.state is State.CLOSED
    assert esme.next_deadline() is None and smsc.next_deadline() is None


def test_unbind_by_smsc() -> None:
    esme, smsc = bound_pair()
    smsc.unbind(now=0)
    assert transfer(smsc, esme) == [Unbound(by_peer=True)]
    assert esme.state is State.CLOSED
    assert transfer(esme, smsc) == [Unbound(by_peer=False)]
    assert smsc.state is State.CLOSED


def test_unbind_unanswered() -> None:
    esme, _ = bound_pair(esme_cfg=SessionConfig(response_timeout=5))
    esme.unbind(now=0)
    assert esme.handle_timers(now=5) == [Unbound(by_peer=False)]
    assert esme.state is State.CLOSED


def test_unbind_when_not_bound() -> None:
    esme, _ = make_pair()
    assert esme.unbind(now=0) is None
    assert esme.state is State.CLOSED


# -- responses -------------------------------------------------------------------------------------


def test_response_answering_nothing() -> None:
    esme, _ = bound_pair()
    events = esme.receive_data(
        codec.encode(Pdu("submit_sm_resp", 999, 0, {"message_id": "x"})), now=0)
    (err,) = events
    assert isinstance(err, ProtocolError) and not err.fatal
    assert esme.bound
    assert esme.data_to_send() == b""


def test_generic_nack_answers_pending_request() -> None:
    esme, _ = bound_pair()
    seq = esme.send_request("submit_sm", SUBMIT, now=0, context="ctx")
    esme.data_to_send()
    events = esme.receive_data(codec.encode(Pdu("generic_nack", seq, st.ESME_RTHROTTLED)),
                               now=0)
    (ev,) = events
    assert isinstance(ev, ResponseReceived)
    assert (ev.pdu.command, ev.pdu.status) == ("generic_nack", st.ESME_RTHROTTLED)
    assert ev.request.context == "ctx" and ev.request.sequence == seq
    assert esme.outstanding == 0


def test_mismatched_response_command_is_reported() -> None:
    esme, _ = bound_pair()
    seq = esme.send_request("submit_sm", SUBMIT, now=0)
    events = esme.receive_data(codec.encode(Pdu("deliver_sm_resp", seq, 0)), now=0)
    assert len(of(events, ProtocolError)) == 1
    assert len(of(events, ResponseReceived)) == 1


def test_error_response_with_empty_body() -> None:
    esme, _ = bound_pair()
    seq = esme.send_request("submit_sm", SUBMIT, now=0)
    raw = struct.pack(">LLLL", 16, codec.COMMAND_IDS["submit_sm_resp"], st.ESME_RTHROTTLED,
                      seq)
    (ev,) = esme.receive_data(raw, now=0)
    assert isinstance(ev, ResponseReceived) and ev.pdu.status == st.ESME_RTHROTTLED


def test_fail_all_pending() -> None:
    esme, _ = bound_pair()
    esme.send_request("submit_sm", SUBMIT, now=0, context=1)
    esme.send_request("enquire_link", now=0)
    failed = esme.fail_all_pending()
    assert [p.context for p in failed] == [1]
    assert esme.state is State.CLOSED and esme.outstanding == 0
    assert esme.next_deadline() is None


def test_alert_notification_needs_no_response() -> None:
    esme, _smsc = bound_pair("bind_receiver")
    raw = codec.encode(Pdu("alert_notification", 4, 0, {"source_addr": "1", "esme_addr": "2"}))
    (ev,) = esme.receive_data(raw, now=0)
    assert isinstance(ev, AlertNotification)  # an event, not a request to answer
    esme.respond(ev.pdu)  # there is no alert_notification_resp: nothing is sent
    assert esme.data_to_send() == b""
