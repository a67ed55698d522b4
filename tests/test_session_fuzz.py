"""Fuzzing the sans-IO session (issue 9 §5): random bytes, mutated valid PDUs and random
splits of the byte stream fed to `receive_data`, on both roles, unbound and bound, with the
application answering whatever it is handed. The session never raises, only ever writes
well-formed PDUs, answers every request it does not hand on (its response or generic_nack)
unless it closed, and does the same whatever the stream's split."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as hs

from gateway.smpp import codec
from gateway.smpp import session as sm
from gateway.smpp import status as st
from gateway.smpp.codec import Pdu
from tests.test_codec import CASES

CONFIG = sm.SessionConfig(max_pdu_length=4096, pdu_read_timeout=5.0, max_unanswered=3)
_VALID = [codec.encode(Pdu(c, seq, status, dict(p))) for c, seq, status, p in CASES]
_IDS = [*codec.COMMAND_IDS.values(), 0x99, 0x80000099, 0xFFFFFFFF]


def _mutate(frame: bytes, data: hs.DataObject) -> bytes:
    kind = data.draw(hs.sampled_from(["flip", "cut", "append", "length", "id", "keep"]))
    b = bytearray(frame)
    if kind == "flip" and b:
        for _ in range(data.draw(hs.integers(1, 4))):
            i = data.draw(hs.integers(0, len(b) - 1))
            b[i] = data.draw(hs.integers(0, 255))
    elif kind == "cut":
        b = b[:data.draw(hs.integers(0, len(b)))]
        b[0:4] = struct.pack(">L", max(len(b), 16))[: len(b[0:4])]
    elif kind == "append":
        b += data.draw(hs.binary(max_size=30))
        b[0:4] = struct.pack(">L", len(b))
    elif kind == "length":
        b[0:4] = struct.pack(">L", data.draw(hs.sampled_from([0, 1, 15, 16, len(b) - 1,
                                                               len(b) + 1, 0xFFFFFFFF])))
    elif kind == "id":
        b[4:8] = struct.pack(">L", data.draw(hs.sampled_from(_IDS)))
    return bytes(b)


@hs.composite
def streams(draw: hs.DrawFn) -> bytes:
    """Frames: valid ones, mutated ones, random headers with random bodies, raw noise."""
    out = []
    for _ in range(draw(hs.integers(1, 8))):
        choice = draw(hs.integers(0, 3))
        if choice == 0:
            out.append(draw(hs.sampled_from(_VALID)))
        elif choice == 1:
            out.append(_mutate(draw(hs.sampled_from(_VALID)), draw(hs.data())))
        elif choice == 2:
            body = draw(hs.binary(max_size=80))
            out.append(struct.pack(">LLLL", 16 + len(body), draw(hs.sampled_from(_IDS)),
                                   draw(hs.integers(0, 0xFFFFFFFF)),
                                   draw(hs.integers(0, 0xFFFFFFFF))) + body)
        else:
            out.append(draw(hs.binary(max_size=40)))
    return b"".join(out)


def _session(role: sm.Role, bound: bool) -> sm.Session:
    s = sm.Session(role, CONFIG, now=0.0)
    if not bound:
        return s
    if role is sm.Role.SMSC:
        events = s.receive_data(codec.encode(Pdu("bind_transceiver", 1, 0, {
            "system_id": "a", "password": "b", "system_type": "", "interface_version": 0x34,
            "address_range": ""})), now=0.0)
        (ev,) = events
        assert isinstance(ev, sm.BindRequested)
        s.accept_bind(ev.pdu, "smsc")
    else:
        seq = s.bind("bind_transceiver", system_id="a", password="b", now=0.0)
        s.receive_data(codec.encode(Pdu("bind_transceiver_resp", seq, 0,
                                        {"system_id": "smsc"})), now=0.0)
    assert s.bound
    s.data_to_send()
    return s


def _frames(data: bytes) -> list[Pdu]:
    """Our own output must always be whole, decodable PDUs."""
    pdus = []
    while data:
        length = int.from_bytes(data[:4], "big")
        assert 16 <= length <= len(data), "the session wrote a broken frame"
        pdus.append(codec.decode(data[:length]))
        data = data[length:]
    return pdus


def _run(role: sm.Role, bound: bool, stream: bytes, cuts: list[int]) -> tuple[list[Any],
                                                                              list[Pdu]]:
    s = _session(role, bound)
    events: list[Any] = []
    out: list[Pdu] = []
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    for piece in pieces:
        events += s.receive_data(piece, now=1.0)
        out += _frames(s.data_to_send())
    # The application answers what it was handed (later, as the transport's tasks do).
    for ev in events:
        if isinstance(ev, sm.RequestReceived):
            s.respond(ev.pdu, st.ESME_ROK)
        elif isinstance(ev, sm.BindRequested):
            s.reject_bind(ev.pdu, st.ESME_RBINDFAIL, "smsc")
    out += _frames(s.data_to_send())
    events += s.handle_timers(now=100.0)  # every timer, the slow-loris one included
    out += _frames(s.data_to_send())
    if any(isinstance(e, sm.ProtocolError) and e.fatal for e in events):
        assert s.state is sm.State.CLOSED
    return events, out


@settings(max_examples=400, deadline=None)
@given(role=hs.sampled_from(list(sm.Role)), bound=hs.booleans(), stream=streams(),
       data=hs.data())
def test_session_survives_any_stream_whatever_the_split(role: sm.Role, bound: bool,
                                                        stream: bytes,
                                                        data: hs.DataObject) -> None:
    whole_events, whole_out = _run(role, bound, stream, [])
    cuts = sorted(data.draw(hs.lists(hs.integers(0, len(stream)), max_size=12)))
    split_events, split_out = _run(role, bound, stream, cuts)
    assert [type(e) for e in split_events] == [type(e) for e in whole_events]
    assert split_out == whole_out


@settings(max_examples=300, deadline=None)
@given(role=hs.sampled_from(list(sm.Role)), stream=streams())
def test_every_request_read_is_answered_or_the_session_closed(role: sm.Role,
                                                              stream: bytes) -> None:
    s = _session(role, bound=True)
    answered: set[int] = set()
    requests: list[int] = []
    closed = False
    buf = stream
    # Walk the frames as the session will see them, to know which requests it read.
    while len(buf) >= 16:
        length = int.from_bytes(buf[:4], "big")
        if not 16 <= length <= CONFIG.max_pdu_length or length > len(buf):
            break
        command_id = int.from_bytes(buf[4:8], "big")
        if codec.is_request_id(command_id) and command_id != 0x80000000 \
                and codec.COMMAND_NAMES.get(command_id) not in ("alert_notification",
                                                                "generic_nack"):
            requests.append(int.from_bytes(buf[12:16], "big"))
        buf = buf[length:]
    for ev in s.receive_data(stream, now=1.0):
        if isinstance(ev, sm.RequestReceived | sm.BindRequested):
            answered.add(ev.pdu.sequence)  # handed to the application, which answers it
        elif isinstance(ev, sm.Unbound) or (isinstance(ev, sm.ProtocolError) and ev.fatal):
            closed = True
    answered |= {p.sequence for p in _frames(s.data_to_send())}
    if not closed:
        missing = [seq for seq in requests if seq not in answered]
        assert not missing, f"requests left unanswered: {missing}"
