"""The struct fast path for the hot PDUs (gateway/smpp/fastcodec.py), cross-checked byte for
byte against the reference codec (smpplib's encoder + the table-driven decoder) and against
smpplib itself, over random field values; malformed input gives the reference's DecodeError."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import smpplib.command
from hypothesis import given, settings
from hypothesis import strategies as hs

from gateway.smpp import codec, fastcodec
from gateway.smpp.codec import DecodeError, EncodeError, Pdu
from tests.test_codec import CASES, _fix_length, _smpplib_make, _smpplib_parse

LATIN1 = hs.characters(min_codepoint=1, max_codepoint=255)
ASCII = hs.characters(min_codepoint=1, max_codepoint=127)
U8 = hs.integers(0, 0xFF)
U16 = hs.integers(0, 0xFFFF)
U32 = hs.integers(0, 0xFFFFFFFF)


def _cstr(max_octets: int, alphabet: Any = LATIN1) -> Any:
    return hs.text(alphabet, max_size=max_octets - 1)


@hs.composite
def sm_pdus(draw: Any, command: str | None = None, *, smpplib_safe: bool = False) -> Pdu:
    """A submit_sm / deliver_sm with every mandatory field random and common TLVs.

    smpplib_safe: only what smpplib encodes the same way (ASCII C-string TLVs, no empty
    message_payload, no unknown TLVs), with TLVs in smpplib's order."""
    command = command or draw(hs.sampled_from(["submit_sm", "deliver_sm"]))
    p: dict[str, Any] = {}
    for name, kind, size in fastcodec._SM_MANDATORY:
        if name in ("sm_length", "short_message") or draw(hs.integers(0, 9)) == 0:
            continue  # now and then left out: written as 0 / empty
        p[name] = draw(_cstr(size) if kind == "str" else U8)
    payload = draw(hs.integers(0, 3)) == 0
    if payload:
        p["message_payload"] = draw(hs.binary(min_size=1 if smpplib_safe else 0,
                                              max_size=1200))
    elif draw(hs.booleans()):
        p["short_message"] = draw(hs.binary(max_size=254))
    if draw(hs.booleans()):
        p.update(sar_msg_ref_num=draw(U16), sar_total_segments=draw(U8),
                 sar_segment_seqnum=draw(U8))
    if draw(hs.booleans()):
        p["source_port"], p["destination_port"] = draw(U16), draw(U16)
    if command == "submit_sm" and draw(hs.booleans()):
        p["user_message_reference"] = draw(U16)
    if command == "deliver_sm" and draw(hs.booleans()):
        p["receipted_message_id"] = draw(hs.text(ASCII if smpplib_safe else LATIN1,
                                                 min_size=1, max_size=64))
        p["message_state"] = draw(U8)
        if draw(hs.booleans()):
            p["network_error_code"] = draw(hs.binary(min_size=3, max_size=3))
    extra: dict[int, bytes] = {}
    if not smpplib_safe:
        extra = draw(hs.dictionaries(hs.integers(0x1400, 0x14FF), hs.binary(max_size=20),
                                     max_size=3))
        if draw(hs.booleans()):  # TLVs in any order, as a peer may send them
            items = list(p.items())
            p = dict(draw(hs.permutations(items)))
    else:
        names = list(smpplib.command.factory(command, client=_Seq()).params_order)
        p = {k: p[k] for k in names if k in p}
    return Pdu(command, draw(U32), draw(U32), p, extra)


class _Seq:
    sequence = 0

    def next_sequence(self) -> int:
        return 0


def resp_pdus() -> Any:
    return hs.builds(
        lambda command, seq, status, mid, extra: Pdu(
            command, seq, status, {} if mid is None else {"message_id": mid}, extra),
        hs.sampled_from(["submit_sm_resp", "deliver_sm_resp"]), U32, U32,
        hs.none() | _cstr(65),
        hs.dictionaries(hs.integers(0x1400, 0x14FF), hs.binary(max_size=8), max_size=2))


def empty_pdus() -> Any:
    return hs.builds(Pdu, hs.sampled_from(list(fastcodec._EMPTY_COMMANDS)), U32, U32)


HOT = sm_pdus() | resp_pdus() | empty_pdus()


# -- the ordinary case: fast == reference, both ways ------------------------------------------


@settings(max_examples=600, deadline=None)
@given(pdu=HOT)
def test_fast_encode_equals_reference(pdu: Pdu) -> None:
    fast = fastcodec.encode(pdu)
    assert fast is not None, "an ordinary hot PDU must take the fast path"
    assert fast == codec.encode_reference(pdu)
    assert codec.encode(pdu) == fast


@settings(max_examples=600, deadline=None)
@given(pdu=HOT)
def test_fast_decode_equals_reference(pdu: Pdu) -> None:
    data = codec.encode_reference(pdu)
    fast = fastcodec.decode(data)
    reference = codec.decode_reference(data)
    if fast is None:  # only a body ending right after sm_length is left to the reference
        assert pdu.command in fastcodec._SM_COMMANDS and "short_message" not in reference.params
    else:
        assert fast == reference
        assert fastcodec.encode(fast) == data  # nothing lost on the way back
    assert codec.decode(data) == reference


@settings(max_examples=300, deadline=None)
@given(pdu=sm_pdus(smpplib_safe=True) | resp_pdus().filter(lambda p: not p.extra_tlvs)
       | empty_pdus())
def test_fast_encode_equals_smpplib(pdu: Pdu) -> None:
    ours = fastcodec.encode(pdu)
    assert ours is not None
    theirs = _smpplib_make(pdu.command, pdu.sequence, pdu.status, dict(pdu.params))
    assert ours == theirs
    # And what smpplib encodes, the fast decoder reads as the reference does.
    assert fastcodec.decode(theirs) in (None, codec.decode_reference(theirs))
    obj = _smpplib_parse(ours)
    assert (obj.command, obj.sequence, obj.status) == (pdu.command, pdu.sequence, pdu.status)


@pytest.mark.parametrize(("command", "seq", "status", "params"),
                         [c for c in CASES if c[0] in fastcodec._ENCODERS])
def test_fixed_cases_take_the_fast_path(command: str, seq: int, status: int,
                                        params: dict[str, Any]) -> None:
    pdu = Pdu(command, seq, status, dict(params))
    data = fastcodec.encode(pdu)
    assert data is not None and data == codec.encode_reference(pdu)
    decoded = fastcodec.decode(data)
    assert decoded is not None and decoded == codec.decode_reference(data)


def test_body_ending_after_sm_length_matches_reference() -> None:
    # The reference leaves short_message out when the frame ends right after sm_length.
    data = codec.encode(Pdu("deliver_sm", 1, 0, {"source_addr": "1"}))
    assert codec.decode(data) == codec.decode_reference(data)
    assert "short_message" not in codec.decode(data).params


# -- unusual input: the reference decides, errors included ------------------------------------


def _outcome(fn: Any, frame: bytes) -> Any:
    try:
        return fn(frame)
    except DecodeError as exc:
        return ("DecodeError", exc.reason, exc.status, exc.command_id, exc.sequence,
                exc.in_body)


_HOT_IDS = [codec.COMMAND_IDS[n] for n in fastcodec._ENCODERS]


@settings(max_examples=800, deadline=None)
@given(command_id=hs.sampled_from(_HOT_IDS), status=U32, seq=U32,
       body=hs.binary(max_size=200), length_delta=hs.sampled_from([0, 0, 0, -1, 1]))
def test_random_frames_decode_as_reference(command_id: int, status: int, seq: int,
                                           body: bytes, length_delta: int) -> None:
    frame = struct.pack(">LLLL", 16 + len(body) + length_delta, command_id, status, seq) + body
    assert _outcome(codec.decode, frame) == _outcome(codec.decode_reference, frame)


@settings(max_examples=800, deadline=None)
@given(pdu=HOT, cut=hs.integers(16, 400), noise=hs.binary(max_size=40),
       flip=hs.tuples(hs.integers(16, 400), U8))
def test_mutated_frames_decode_as_reference(pdu: Pdu, cut: int, noise: bytes,
                                            flip: tuple[int, int]) -> None:
    data = bytearray(codec.encode_reference(pdu)[:cut] + noise)
    if flip[0] < len(data):
        data[flip[0]] = flip[1]
    frame = _fix_length(bytes(data))
    assert _outcome(codec.decode, frame) == _outcome(codec.decode_reference, frame)


@pytest.mark.parametrize(("command", "params"), [
    ("submit_sm", {"destination_addr": "1" * 21}),
    ("submit_sm", {"short_message": b"x" * 255}),
    ("submit_sm", {"short_message": "text"}),
    ("submit_sm", {"source_addr": 123}),
    ("submit_sm", {"esm_class": 256}),
    ("submit_sm", {"esm_class": True}),
    ("submit_sm", {"sm_length": 300}),
    ("submit_sm", {"sar_msg_ref_num": 0x10000}),
    ("submit_sm", {"destination_addr": "€"}),
    ("submit_sm", {"destination_addr": "12\x0034"}),
    ("submit_sm", {"no_such_field": 1}),
    ("submit_sm", {"receipted_message_id": "x"}),
    ("submit_sm", {"short_message": b"a", "message_payload": b"b"}),
    ("submit_sm", {"message_payload": b"x" * 0x10000}),
    ("submit_sm_resp", {"message_id": "m" * 65}),
    ("submit_sm_resp", {"message_id": "m", "other": 1}),
    ("deliver_sm", {"network_error_code": b"\x03\x00"}),
    ("enquire_link", {"x": 1}),
])
def test_unusual_values_left_to_the_reference(command: str, params: dict[str, Any]) -> None:
    pdu = Pdu(command, 1, 0, params)
    assert fastcodec.encode(pdu) is None
    try:
        expected: Any = codec.encode_reference(pdu)
    except EncodeError as exc:
        expected = EncodeError
        with pytest.raises(EncodeError, match=str(exc)[:20].replace("(", r"\(")):
            codec.encode(pdu)
    else:
        assert codec.encode(pdu) == expected  # e.g. bool flags: the reference's octets


@pytest.mark.parametrize(("seq", "status"), [(-1, 0), (1 << 32, 0), (0, -1), ("1", 0)])
def test_header_out_of_range(seq: Any, status: Any) -> None:
    pdu = Pdu("enquire_link", seq, status)
    assert fastcodec.encode(pdu) is None
    with pytest.raises(EncodeError):
        codec.encode(pdu)


def test_unknown_tlv_kept_by_fast_path() -> None:
    base = codec.encode(Pdu("deliver_sm", 3, 0, {"source_addr": "1", "short_message": b"x"}))
    data = _fix_length(base + struct.pack(">HH", 0x1401, 2) + b"ab")
    fast = fastcodec.decode(data)
    assert fast is not None and fast.extra_tlvs == {0x1401: b"ab"}
    assert fast == codec.decode_reference(data)
    assert fastcodec.encode(fast) == data
