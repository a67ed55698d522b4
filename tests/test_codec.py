"""PDU codec: round trips, cross-checks against smpplib, and malformed input."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import smpplib.smpp
from hypothesis import given, settings
from hypothesis import strategies as hs

from gateway.smpp import codec
from gateway.smpp import status as st
from gateway.smpp.codec import DecodeError, EncodeError, Pdu


class _Client:
    """What smpplib wants as `client=`: a sequence holder."""

    sequence = 0

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence


def _smpplib_parse(data: bytes) -> Any:
    return smpplib.smpp.parse_pdu(data, client=_Client(), allow_unknown_opt_params=True)


def _smpplib_make(command: str, sequence: int, status: int, params: dict[str, Any]) -> bytes:
    obj = smpplib.smpp.make_pdu(command, client=_Client(), **params)
    obj.sequence = sequence  # smpplib ignores sequence= (pitfall 1)
    obj.status = status
    return obj.generate()


def _header(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return struct.pack(">LLLL", 16 + len(body), command_id, status, sequence) + body


def _fix_length(frame: bytes) -> bytes:
    return struct.pack(">L", len(frame)) + frame[4:]


BIND = {"system_id": "test", "password": "secret", "system_type": "VMA",
        "interface_version": 0x34, "addr_ton": 1, "addr_npi": 1, "address_range": "^491"}
SUBMIT = {"service_type": "CMT", "source_addr_ton": 5, "source_addr_npi": 0,
          "source_addr": "Shop", "dest_addr_ton": 1, "dest_addr_npi": 1,
          "destination_addr": "4915112345678", "esm_class": 0x40, "protocol_id": 0,
          "priority_flag": 1, "schedule_delivery_time": "", "validity_period":
          "000001000000000R", "registered_delivery": 1, "replace_if_present_flag": 0,
          "data_coding": 8, "sm_default_msg_id": 0,
          "short_message": "Grüße 🙂".encode("utf-16-be"),
          "sar_msg_ref_num": 0xBEEF, "sar_total_segments": 3, "sar_segment_seqnum": 2,
          "source_port": 1234, "destination_port": 2948, "user_message_reference": 7}
RECEIPT = {"source_addr": "4915112345678", "destination_addr": "Shop", "esm_class": 0x04,
           "short_message": b"id:abc123 sub:001 dlvrd:001 submit date:2401011200 "
                            b"done date:2401011201 stat:DELIVRD err:000 text:",
           "receipted_message_id": "abc123", "message_state": 2,
           "network_error_code": b"\x03\x00\x00"}
MO_PART = {"source_addr": "4915112345678", "source_addr_ton": 1, "source_addr_npi": 1,
           "destination_addr": "12345", "data_coding": 0, "short_message": b"part two",
           "sar_msg_ref_num": 42, "sar_total_segments": 2, "sar_segment_seqnum": 2}
DATA_SM = {"service_type": "", "source_addr": "123", "destination_addr": "456",
           "esm_class": 0, "registered_delivery": 1, "data_coding": 0,
           "message_payload": b"x" * 400, "source_port": 1, "qos_time_to_live": 86400}

# (command, sequence, status, params)
CASES: list[tuple[str, int, int, dict[str, Any]]] = [
    ("bind_transmitter", 1, 0, BIND),
    ("bind_receiver", 2, 0, BIND),
    ("bind_transceiver", 3, 0, BIND),
    ("bind_transmitter_resp", 1, 0, {"system_id": "SMSC", "sc_interface_version": 0x34}),
    ("bind_receiver_resp", 2, 0, {"system_id": "SMSC", "sc_interface_version": 0x34}),
    ("bind_transceiver_resp", 3, 0, {"system_id": "SMSC", "sc_interface_version": 0x34}),
    ("bind_transceiver_resp", 4, st.ESME_RINVPASWD, {"system_id": "SMSC"}),
    ("submit_sm", 0x7FFFFFFF, 0, SUBMIT),
    ("submit_sm", 10, 0, {"source_addr": "1", "destination_addr": "2",
                          "message_payload": b"\x00" * 1000}),
    ("submit_sm_resp", 10, 0, {"message_id": "f" * 64}),
    ("submit_sm_resp", 11, st.ESME_RTHROTTLED, {"message_id": ""}),
    ("deliver_sm", 20, 0, RECEIPT),
    ("deliver_sm", 21, 0, MO_PART),
    ("deliver_sm_resp", 20, 0, {"message_id": ""}),
    ("data_sm", 30, 0, DATA_SM),
    ("data_sm", 31, 0, {"source_addr": "1", "destination_addr": "2",
                        "receipted_message_id": "m-1", "message_state": 5}),
    ("data_sm_resp", 30, 0, {"message_id": "ds-1"}),
    ("query_sm", 40, 0, {"message_id": "abc123", "source_addr_ton": 1, "source_addr_npi": 1,
                         "source_addr": "Shop"}),
    ("query_sm_resp", 40, 0, {"message_id": "abc123", "final_date": "240101120000000+",
                              "message_state": 2, "error_code": 0}),
    ("enquire_link", 50, 0, {}),
    ("enquire_link_resp", 50, 0, {}),
    ("unbind", 60, 0, {}),
    ("unbind_resp", 60, 0, {}),
    ("generic_nack", 70, st.ESME_RINVCMDID, {}),
]
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "seq", "status", "params"), CASES, ids=IDS)
def test_round_trip(command: str, seq: int, status: int, params: dict[str, Any]) -> None:
    data = codec.encode(Pdu(command, seq, status, dict(params)))
    assert struct.unpack(">L", data[:4])[0] == len(data)
    pdu = codec.decode(data)
    assert (pdu.command, pdu.sequence, pdu.status) == (command, seq, status)
    assert pdu.command_id == codec.COMMAND_IDS[command]
    assert pdu.is_response == command.endswith("_resp") or command == "generic_nack"
    for name, value in params.items():
        assert pdu.params[name] == value, name
    assert pdu.extra_tlvs == {}
    if "short_message" in params:
        assert pdu.params["sm_length"] == len(params["short_message"])
    # Decoding loses nothing: re-encoding the decoded PDU gives the same octets.
    assert codec.encode(pdu) == data


@pytest.mark.parametrize("command", ["cancel_sm", "cancel_sm_resp", "replace_sm",
                                     "replace_sm_resp", "submit_multi", "submit_multi_resp"])
def test_header_only_round_trip(command: str) -> None:
    body = b"\x00\x01\x011234\x00\x01\x015678\x00" if not command.endswith("_resp") else b""
    data = codec.encode(Pdu(command, 99, 0, body=body))
    assert data == _header(codec.COMMAND_IDS[command], 99, body)
    pdu = codec.decode(data)
    assert (pdu.command, pdu.sequence, pdu.body, pdu.params) == (command, 99, body, {})
    assert codec.encode(pdu) == data


# -- cross-checks against smpplib -----------------------------------------------------------------


def _smpplib_value(value: Any) -> Any:
    return value.encode("latin-1") if isinstance(value, str) else value


@pytest.mark.parametrize(("command", "seq", "status", "params"), CASES, ids=IDS)
def test_smpplib_parses_what_we_encode(command: str, seq: int, status: int,
                                       params: dict[str, Any]) -> None:
    data = codec.encode(Pdu(command, seq, status, dict(params)))
    obj = _smpplib_parse(data)
    assert obj.command == command
    assert (obj.sequence, obj.status) == (seq, status)
    for name, value in params.items():
        assert getattr(obj, name) == _smpplib_value(value), name


# smpplib writes C-string TLVs as UTF-8 and leaves out empty ones; keep to ASCII here.
@pytest.mark.parametrize(("command", "seq", "status", "params"), CASES, ids=IDS)
def test_we_decode_what_smpplib_encodes(command: str, seq: int, status: int,
                                        params: dict[str, Any]) -> None:
    data = _smpplib_make(command, seq, status, params)
    pdu = codec.decode(data)
    assert (pdu.command, pdu.sequence, pdu.status) == (command, seq, status)
    for name, value in params.items():
        assert pdu.params[name] == value, name
    assert codec.encode(pdu) == data


def test_latin1_string_tlv_round_trips_and_matches_smpplib_mandatory_strings() -> None:
    # Mandatory C-strings are latin-1 in smpplib; C-string TLVs must be too (not UTF-8).
    params = {"source_addr": "Café", "destination_addr": "2", "receipted_message_id": "idé"}
    data = codec.encode(Pdu("deliver_sm", 5, 0, params))
    assert b"id\xe9\x00" in data
    pdu = codec.decode(data)
    assert pdu.params["receipted_message_id"] == "idé"
    assert pdu.params["source_addr"] == "Café"
    obj = _smpplib_parse(data)
    assert obj.receipted_message_id == "idé".encode("latin-1")


def test_flag_tlv_is_not_dropped() -> None:
    # alert_on_message_delivery is a zero-length TLV; smpplib never writes flags.
    data = codec.encode(Pdu("submit_sm", 1, 0, {"source_addr": "1", "destination_addr": "2",
                                                "alert_on_message_delivery": b""}))
    assert data.endswith(b"\x13\x0c\x00\x00")
    assert codec.decode(data).params["alert_on_message_delivery"] == b""


# -- malformed input ------------------------------------------------------------------------------


def test_unknown_command_id() -> None:
    with pytest.raises(DecodeError) as ei:
        codec.decode(_header(0x00000099, 4242, b"abc"))
    assert ei.value.status == st.ESME_RINVCMDID
    assert ei.value.sequence == 4242
    assert ei.value.command_id == 0x99


def test_frame_shorter_than_header() -> None:
    with pytest.raises(DecodeError):
        codec.decode(b"\x00\x00\x00\x10\x00\x00")


def test_command_length_mismatch() -> None:
    frame = _header(codec.COMMAND_IDS["submit_sm_resp"], 9, b"abc\x00")
    for bad in (frame + b"\x00", frame[:-1]):
        with pytest.raises(DecodeError) as ei:
            codec.decode(bad)
        assert ei.value.status == st.ESME_RINVCMDLEN
        assert ei.value.sequence == 9


def test_cstring_without_nul() -> None:
    with pytest.raises(DecodeError) as ei:
        codec.decode(_header(codec.COMMAND_IDS["submit_sm_resp"], 8, b"abc"))
    assert ei.value.sequence == 8
    assert ei.value.command_id == codec.COMMAND_IDS["submit_sm_resp"]


def _raw_submit(source: bytes, dest: bytes = b"2", sm: bytes = b"hi",
                sm_length: int | None = None) -> bytes:
    body = (b"\x00" + b"\x01\x01" + source + b"\x00" + b"\x01\x01" + dest + b"\x00"
            + b"\x00\x00\x00" + b"\x00" + b"\x00" + b"\x00\x00\x00\x00"
            + bytes([len(sm) if sm_length is None else sm_length]) + sm)
    return _header(codec.COMMAND_IDS["submit_sm"], 77, body)


def test_raw_submit_helper_is_valid() -> None:
    pdu = codec.decode(_raw_submit(b"1" * 20, b"2" * 20))
    assert pdu.params["source_addr"] == "1" * 20
    assert pdu.params["destination_addr"] == "2" * 20
    assert pdu.params["short_message"] == b"hi"


def test_cstring_over_max() -> None:
    with pytest.raises(DecodeError) as ei:
        codec.decode(_raw_submit(b"1" * 21))
    assert ei.value.status == st.ESME_RINVSRCADR
    assert (ei.value.sequence, ei.value.command_id) == (77, codec.COMMAND_IDS["submit_sm"])
    with pytest.raises(DecodeError) as ei:
        codec.decode(_raw_submit(b"1", b"2" * 21))
    assert ei.value.status == st.ESME_RINVDSTADR


def test_short_message_past_end() -> None:
    with pytest.raises(DecodeError) as ei:
        codec.decode(_raw_submit(b"1", sm=b"hi", sm_length=10))
    assert ei.value.status == st.ESME_RINVMSGLEN
    assert ei.value.sequence == 77


def _with_tlv(frame: bytes, tlv: bytes) -> bytes:
    return _fix_length(frame + tlv)


def test_tlv_length_past_end() -> None:
    base = codec.encode(Pdu("deliver_sm", 3, 0, {"source_addr": "1", "destination_addr": "2"}))
    with pytest.raises(DecodeError) as ei:
        codec.decode(_with_tlv(base, struct.pack(">HH", 0x001E, 10) + b"ab"))
    assert ei.value.status == st.ESME_RINVOPTPARSTREAM
    assert ei.value.sequence == 3
    with pytest.raises(DecodeError):  # a truncated TLV header
        codec.decode(_with_tlv(base, b"\x00\x1e\x00"))


@pytest.mark.parametrize("length", [0, 3, 5])
def test_integer_tlv_of_wrong_length(length: int) -> None:
    base = codec.encode(Pdu("deliver_sm", 3, 0, {"source_addr": "1", "destination_addr": "2"}))
    bad = _with_tlv(base, struct.pack(">HH", 0x020C, length) + b"\x01" * length)
    with pytest.raises(DecodeError) as ei:
        codec.decode(bad)
    assert ei.value.status == st.ESME_RINVPARLEN
    assert ei.value.sequence == 3


def test_unknown_tlv_kept_and_reencoded() -> None:
    base = codec.encode(Pdu("deliver_sm", 3, 0, {"source_addr": "1", "destination_addr": "2",
                                                 "message_state": 2}))
    data = _with_tlv(base, struct.pack(">HH", 0x1401, 3) + b"abc"
                     + struct.pack(">HH", 0x1402, 0))
    pdu = codec.decode(data)
    assert pdu.extra_tlvs == {0x1401: b"abc", 0x1402: b""}
    assert pdu.params["message_state"] == 2
    assert codec.encode(pdu) == data
    # smpplib agrees on the known fields and skips the unknown ones.
    assert _smpplib_parse(data).message_state == 2


def test_known_tlv_not_in_command_table_kept_as_extra() -> None:
    # receipted_message_id is not a submit_sm TLV; smpplib would raise KeyError here.
    base = codec.encode(Pdu("submit_sm", 3, 0, {"source_addr": "1", "destination_addr": "2"}))
    data = _with_tlv(base, struct.pack(">HH", 0x001E, 2) + b"x\x00")
    pdu = codec.decode(data)
    assert pdu.extra_tlvs == {0x001E: b"x\x00"}
    assert codec.encode(pdu) == data


def test_error_resp_with_empty_body() -> None:
    frame = _header(codec.COMMAND_IDS["submit_sm_resp"], 12, status=st.ESME_RTHROTTLED)
    pdu = codec.decode(frame)
    assert (pdu.command, pdu.sequence, pdu.status) == ("submit_sm_resp", 12,
                                                       st.ESME_RTHROTTLED)
    assert pdu.get("message_id") is None
    assert pdu.get("message_id", "") == ""


@pytest.mark.parametrize(("command", "params"), [
    ("submit_sm", {"destination_addr": "1" * 21}),
    ("submit_sm", {"source_addr": "1" * 21}),
    ("submit_sm", {"short_message": b"x" * 255}),
    ("submit_sm", {"short_message": "text"}),
    ("submit_sm", {"source_addr": 123}),
    ("submit_sm", {"esm_class": "4"}),
    ("submit_sm", {"esm_class": 256}),
    ("submit_sm", {"esm_class": -1}),
    ("submit_sm", {"sar_msg_ref_num": 0x10000}),
    ("submit_sm", {"destination_addr": "€"}),
    ("submit_sm", {"destination_addr": "12\x0034"}),
    ("submit_sm", {"no_such_field": 1}),
    ("submit_sm", {"receipted_message_id": "x"}),  # not a submit_sm TLV
    ("submit_sm", {"short_message": b"a", "message_payload": b"b"}),
    ("submit_sm", {"message_payload": b"x" * 0x10000}),
    ("submit_sm_resp", {"message_id": "m" * 65}),
    ("deliver_sm", {"receipted_message_id": "r" * 65}),
    ("deliver_sm", {"network_error_code": b"\x03\x00"}),
    ("bind_transmitter", {"password": "123456789"}),
    ("bind_transmitter", {"system_id": "s" * 16}),
])
def test_encode_refuses(command: str, params: dict[str, Any]) -> None:
    with pytest.raises(EncodeError):
        codec.encode(Pdu(command, 1, 0, params))


def test_encode_accepts_limits() -> None:
    data = codec.encode(Pdu("submit_sm", 1, 0, {"destination_addr": "1" * 20,
                                                "short_message": b"x" * 254}))
    pdu = codec.decode(data)
    assert pdu.params["destination_addr"] == "1" * 20
    assert len(pdu.params["short_message"]) == 254


def test_encode_unknown_command() -> None:
    with pytest.raises(EncodeError):
        codec.encode(Pdu("no_such_command", 1))


# -- fuzzing --------------------------------------------------------------------------------------

_IDS = [*codec.COMMAND_IDS.values(), 0x99, 0x80000099, 0xFFFFFFFF]


@settings(max_examples=500, deadline=None)
@given(command_id=hs.sampled_from(_IDS), status=hs.integers(0, 0xFFFFFFFF),
       seq=hs.integers(0, 0xFFFFFFFF), body=hs.binary(max_size=300),
       length_delta=hs.sampled_from([0, 0, 0, 0, -1, 1]))
def test_decode_raises_only_decode_error(command_id: int, status: int, seq: int, body: bytes,
                                         length_delta: int) -> None:
    frame = struct.pack(">LLLL", 16 + len(body) + length_delta, command_id, status, seq) + body
    try:
        pdu = codec.decode(frame)
    except DecodeError as exc:
        assert exc.sequence == seq
        assert exc.command_id == command_id
        return
    assert pdu.sequence == seq
    assert pdu.command_id == command_id


@settings(max_examples=300, deadline=None)
@given(command=hs.sampled_from([c[0] for c in CASES]), cut=hs.integers(0, 400),
       noise=hs.binary(max_size=40))
def test_decode_mutated_valid_pdus(command: str, cut: int, noise: bytes) -> None:
    params = next(c[3] for c in CASES if c[0] == command)
    data = codec.encode(Pdu(command, 5, 0, dict(params)))
    frame = _fix_length(data[: max(16, min(cut, len(data)))] + noise)
    try:
        codec.decode(frame)
    except DecodeError as exc:
        assert exc.sequence == 5
