"""The session's own guards against a hostile peer (sans-IO; the listener tests in
tests/listeners/ run the same over TCP): the slow-loris PDU read timeout and the cap on
requests awaiting the application's answer."""

from __future__ import annotations

from gateway.smpp import codec
from gateway.smpp import status as st
from gateway.smpp.codec import Pdu
from gateway.smpp.session import ProtocolError, RequestReceived, SessionConfig, State
from tests.test_session import _decode_all, bound_pair

SUBMIT = {"source_addr": "1", "destination_addr": "2", "short_message": b"hi"}


def test_incomplete_pdu_closes_after_read_timeout_from_its_first_octet() -> None:
    _esme, smsc = bound_pair(smsc_cfg=SessionConfig(pdu_read_timeout=5.0,
                                                    enquire_link_interval=1000))
    frame = codec.encode(Pdu("submit_sm", 9, 0, SUBMIT))
    smsc.receive_data(frame[:3], now=10.0)
    assert smsc.next_deadline() == 15.0
    for i in range(3, len(frame) - 1):  # trickling octets do not restart the clock
        smsc.receive_data(frame[i:i + 1], now=10.0 + i * 0.1)
    assert smsc.next_deadline() == 15.0
    assert smsc.handle_timers(now=14.9) == []
    (err,) = smsc.handle_timers(now=15.0)
    assert isinstance(err, ProtocolError) and err.fatal and "read timeout 5s" in err.reason
    assert smsc.state is State.CLOSED


def test_complete_pdus_clear_the_read_timer() -> None:
    _esme, smsc = bound_pair(smsc_cfg=SessionConfig(pdu_read_timeout=5.0,
                                                    enquire_link_interval=1000))
    frame = codec.encode(Pdu("enquire_link", 4))
    smsc.receive_data(frame[:10], now=1.0)
    smsc.receive_data(frame[10:], now=2.0)
    assert smsc.next_deadline() == 2.0 + 1000  # only the enquire_link timer remains
    assert smsc.handle_timers(now=100.0) == [] and smsc.bound


def test_unanswered_cap_answers_throttled_and_reopens_when_answered() -> None:
    _esme, smsc = bound_pair(smsc_cfg=SessionConfig(max_unanswered=2))
    data = b"".join(codec.encode(Pdu("submit_sm", seq, 0, SUBMIT)) for seq in (1, 2, 3))
    events = smsc.receive_data(data, now=0.0)
    handed = [e.pdu for e in events if isinstance(e, RequestReceived)]
    assert [p.sequence for p in handed] == [1, 2]
    (refusal,) = _decode_all(smsc.data_to_send())
    assert (refusal.command, refusal.sequence, refusal.status) == (
        "submit_sm_resp", 3, st.ESME_RTHROTTLED)
    assert smsc.unanswered == 2
    smsc.respond(handed[0])
    assert smsc.unanswered == 1
    events = smsc.receive_data(codec.encode(Pdu("submit_sm", 4, 0, SUBMIT)), now=0.0)
    assert [type(e) for e in events] == [RequestReceived]


def test_enquire_link_reusing_a_pending_sequence_does_not_free_a_slot() -> None:
    _esme, smsc = bound_pair(smsc_cfg=SessionConfig(max_unanswered=1))
    smsc.receive_data(codec.encode(Pdu("submit_sm", 7, 0, SUBMIT)), now=0.0)
    smsc.receive_data(codec.encode(Pdu("enquire_link", 7)), now=0.0)
    assert smsc.unanswered == 1
    smsc.data_to_send()
    smsc.receive_data(codec.encode(Pdu("submit_sm", 8, 0, SUBMIT)), now=0.0)
    (refusal,) = _decode_all(smsc.data_to_send())
    assert refusal.status == st.ESME_RTHROTTLED


def test_frames_after_an_unbind_in_the_same_read_are_dropped() -> None:
    """Found by tests/test_session_fuzz.py: the events once depended on how TCP split the
    stream (frames after an unbind were still handled when they came in the same read)."""
    esme, _smsc = bound_pair()
    after = codec.encode(Pdu("deliver_sm", 9, 0, SUBMIT))
    events = esme.receive_data(codec.encode(Pdu("unbind", 5)) + after, now=0.0)
    assert [type(e).__name__ for e in events] == ["Unbound"]
    assert [p.command for p in _decode_all(esme.data_to_send())] == ["unbind_resp"]
