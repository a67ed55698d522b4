"""Plain-`struct` encoder and decoder for the hot PDUs, behind gateway/smpp/codec.py.

submit_sm, deliver_sm, their responses, enquire_link(_resp), generic_nack and unbind(_resp)
are most of the traffic; the reference path (smpplib's encoder plus our table-driven decoder)
costs tens of microseconds a PDU. This module does the same work with straight-line code built
from the same tables (codec._LAYOUTS), for the *ordinary* case only: whenever anything is
unusual (a value out of range or of another type, an unknown field, a truncated or malformed
frame, a body cut short), `encode` / `decode` return None and codec.py takes the reference
path, which then produces the result or the EncodeError / DecodeError it always did. So errors
are the reference's by construction, and tests/test_fastcodec.py cross-checks the ordinary
case byte for byte against it (and against smpplib) with random fields.
"""

from __future__ import annotations

import struct
from typing import Any

from gateway.smpp.codec import _LAYOUTS, COMMAND_IDS, HEADER, HEADER_LEN, Pdu, _Field

_TLV_HEAD = struct.Struct(">HH")
_TLV_INT = {1: struct.Struct(">HHB"), 2: struct.Struct(">HHH"), 4: struct.Struct(">HHL")}


class _Slow(Exception):
    """Not the ordinary case: let the reference codec handle it."""


# The short-message PDUs' mandatory part, as the tables define it (checked at import, so a
# change of the tables cannot silently desynchronise the two paths).
_SM_MANDATORY = (
    ("service_type", "str", 6), ("source_addr_ton", "int", 1), ("source_addr_npi", "int", 1),
    ("source_addr", "str", 21), ("dest_addr_ton", "int", 1), ("dest_addr_npi", "int", 1),
    ("destination_addr", "str", 21), ("esm_class", "int", 1), ("protocol_id", "int", 1),
    ("priority_flag", "int", 1), ("schedule_delivery_time", "str", 17),
    ("validity_period", "str", 17), ("registered_delivery", "int", 1),
    ("replace_if_present_flag", "int", 1), ("data_coding", "int", 1),
    ("sm_default_msg_id", "int", 1), ("sm_length", "int", 1), ("short_message", "ostr", 254),
)
_SM_COMMANDS = ("submit_sm", "deliver_sm")
_RESP_COMMANDS = ("submit_sm_resp", "deliver_sm_resp")
_EMPTY_COMMANDS = ("enquire_link", "enquire_link_resp", "generic_nack", "unbind", "unbind_resp")


def _check_tables() -> None:
    for name in _SM_COMMANDS:
        got = tuple((f.name, f.kind, f.max if f.kind != "int" else f.size)
                    for f in _LAYOUTS[name].mandatory)
        assert got == _SM_MANDATORY, f"smpplib's {name} table changed: {got}"
    for name in _RESP_COMMANDS:
        got = tuple((f.name, f.kind, f.max) for f in _LAYOUTS[name].mandatory)
        assert got == (("message_id", "str", 65),), f"smpplib's {name} table changed: {got}"
    for name in _EMPTY_COMMANDS:
        assert not _LAYOUTS[name].mandatory, f"smpplib's {name} table changed"


_check_tables()
_SM_NAMES = frozenset(n for n, _, _ in _SM_MANDATORY)


# --- encoding --------------------------------------------------------------------------------


def _cstr(value: Any, max_octets: int | None) -> bytes:
    """A C-string with its NUL; None is the empty string (as smpplib writes an unset one)."""
    if value is None:
        return b"\0"
    if type(value) is not str:
        raise _Slow
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise _Slow from None
    if (max_octets is not None and len(raw) >= max_octets) or b"\0" in raw:
        raise _Slow
    return raw + b"\0"


def _u8(value: Any) -> int:
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value <= 0xFF:
        raise _Slow
    return value


def _tlv(f: _Field, tag: int, value: Any) -> bytes:
    if f.kind == "int":
        size = f.size or 1
        if type(value) is not int or not 0 <= value < 1 << (8 * size):
            raise _Slow
        return _TLV_INT[size].pack(tag, size, value)
    if f.kind == "str":
        raw = _cstr(value, f.max)
        if len(raw) > 0xFFFF:
            raise _Slow
        return _TLV_HEAD.pack(tag, len(raw)) + raw
    if type(value) is not bytes and type(value) is not bytearray:
        raise _Slow
    if (f.size is not None and len(value) != f.size) or len(value) > 0xFFFF:
        raise _Slow
    return _TLV_HEAD.pack(tag, len(value)) + bytes(value)


def _extra_tlvs(extra: dict[int, bytes]) -> list[bytes]:
    out = []
    for tag, value in extra.items():
        if type(tag) is not int or not 0 <= tag <= 0xFFFF:
            raise _Slow
        if (type(value) is not bytes and type(value) is not bytearray) or len(value) > 0xFFFF:
            raise _Slow
        out.append(_TLV_HEAD.pack(tag, len(value)) + bytes(value))
    return out


def _by_name(name: str) -> dict[str, tuple[_Field, int]]:
    return {f.name: (f, tag) for tag, f in _LAYOUTS[name].optional.items()}


_SM_TLVS = {name: _by_name(name) for name in _SM_COMMANDS}


def _encode_sm(pdu: Pdu) -> bytes:
    p = pdu.params
    g = p.get
    sm = g("short_message")
    if sm is None or sm == b"":
        sm = b""
    elif (type(sm) is not bytes and type(sm) is not bytearray) or len(sm) > 254:
        raise _Slow
    _u8(g("sm_length"))  # validated like any field; the written value is len(short_message)
    parts = [
        _cstr(g("service_type"), 6),
        bytes((_u8(g("source_addr_ton")), _u8(g("source_addr_npi")))),
        _cstr(g("source_addr"), 21),
        bytes((_u8(g("dest_addr_ton")), _u8(g("dest_addr_npi")))),
        _cstr(g("destination_addr"), 21),
        bytes((_u8(g("esm_class")), _u8(g("protocol_id")), _u8(g("priority_flag")))),
        _cstr(g("schedule_delivery_time"), 17),
        _cstr(g("validity_period"), 17),
        bytes((_u8(g("registered_delivery")), _u8(g("replace_if_present_flag")),
               _u8(g("data_coding")), _u8(g("sm_default_msg_id")), len(sm))),
        bytes(sm),
    ]
    if len(p) > len(_SM_NAMES) or not _SM_NAMES.issuperset(p):
        tlvs = _SM_TLVS[pdu.command]
        for name, value in p.items():
            if value is None or name in _SM_NAMES:
                continue
            spec = tlvs.get(name)
            if spec is None:
                raise _Slow
            parts.append(_tlv(spec[0], spec[1], value))
        if sm and g("message_payload") is not None:
            raise _Slow
    if pdu.extra_tlvs:
        parts.extend(_extra_tlvs(pdu.extra_tlvs))
    body = b"".join(parts)
    return HEADER.pack(HEADER_LEN + len(body), COMMAND_IDS[pdu.command], pdu.status,
                       pdu.sequence) + body


def _encode_resp(pdu: Pdu) -> bytes:
    p = pdu.params
    if len(p) > 1 or (p and "message_id" not in p):
        raise _Slow
    body = _cstr(p.get("message_id"), 65)
    if pdu.extra_tlvs:
        body += b"".join(_extra_tlvs(pdu.extra_tlvs))
    return HEADER.pack(HEADER_LEN + len(body), COMMAND_IDS[pdu.command], pdu.status,
                       pdu.sequence) + body


def _encode_empty(pdu: Pdu) -> bytes:
    if pdu.params or pdu.extra_tlvs:
        raise _Slow
    return HEADER.pack(HEADER_LEN, COMMAND_IDS[pdu.command], pdu.status, pdu.sequence)


_ENCODERS = {
    **{n: _encode_sm for n in _SM_COMMANDS},
    **{n: _encode_resp for n in _RESP_COMMANDS},
    **{n: _encode_empty for n in _EMPTY_COMMANDS},
}


def encode(pdu: Pdu) -> bytes | None:
    """The PDU's octets, or None when the reference codec must handle it."""
    encoder = _ENCODERS.get(pdu.command)
    if encoder is None:
        return None
    try:
        return encoder(pdu)
    except (_Slow, struct.error, TypeError, ValueError, OverflowError):
        return None


# --- decoding --------------------------------------------------------------------------------


def _read_cstr(frame: bytes, pos: int, end: int, max_octets: int) -> tuple[str, int]:
    nul = frame.find(b"\0", pos, end)
    if nul < 0 or nul - pos >= max_octets:
        raise _Slow
    return frame[pos:nul].decode("latin-1"), nul + 1


def _read_tlvs(frame: bytes, pos: int, end: int, optional: dict[int, _Field],
               params: dict[str, Any]) -> dict[int, bytes]:
    extra: dict[int, bytes] = {}
    unpack = _TLV_HEAD.unpack_from
    while pos < end:
        if pos + 4 > end:
            raise _Slow
        tag, length = unpack(frame, pos)
        pos += 4
        stop = pos + length
        if stop > end:
            raise _Slow
        value = frame[pos:stop]
        pos = stop
        f = optional.get(tag)
        if f is None:
            extra[tag] = value
        elif f.kind == "int":
            if length not in (1, 2, 4):
                raise _Slow
            params[f.name] = int.from_bytes(value, "big")
        elif f.kind == "str":
            params[f.name] = value.rstrip(b"\0").decode("latin-1")
        else:
            params[f.name] = value
    return extra


def _decode_sm(frame: bytes, name: str, status: int, sequence: int) -> Pdu:
    end = len(frame)
    service_type, pos = _read_cstr(frame, HEADER_LEN, end, 6)
    if pos + 2 > end:
        raise _Slow
    src_ton, src_npi = frame[pos], frame[pos + 1]
    source_addr, pos = _read_cstr(frame, pos + 2, end, 21)
    if pos + 2 > end:
        raise _Slow
    dst_ton, dst_npi = frame[pos], frame[pos + 1]
    destination_addr, pos = _read_cstr(frame, pos + 2, end, 21)
    if pos + 3 > end:
        raise _Slow
    esm_class, protocol_id, priority_flag = frame[pos], frame[pos + 1], frame[pos + 2]
    schedule, pos = _read_cstr(frame, pos + 3, end, 17)
    validity, pos = _read_cstr(frame, pos, end, 17)
    # The reference stops at a field boundary that ends the frame (short_message left out
    # when nothing follows sm_length): the 5 octets and at least one more must be there.
    if pos + 5 >= end:
        raise _Slow
    registered, replace_flag, data_coding, default_id, sm_length = frame[pos:pos + 5]
    pos += 5
    stop = pos + sm_length
    if stop > end:
        raise _Slow
    params: dict[str, Any] = {
        "service_type": service_type, "source_addr_ton": src_ton, "source_addr_npi": src_npi,
        "source_addr": source_addr, "dest_addr_ton": dst_ton, "dest_addr_npi": dst_npi,
        "destination_addr": destination_addr, "esm_class": esm_class,
        "protocol_id": protocol_id, "priority_flag": priority_flag,
        "schedule_delivery_time": schedule, "validity_period": validity,
        "registered_delivery": registered, "replace_if_present_flag": replace_flag,
        "data_coding": data_coding, "sm_default_msg_id": default_id, "sm_length": sm_length,
        "short_message": frame[pos:stop],
    }
    extra = _read_tlvs(frame, stop, end, _LAYOUTS[name].optional, params) if stop < end else {}
    return Pdu(name, sequence, status, params, extra)


def _decode_resp(frame: bytes, name: str, status: int, sequence: int) -> Pdu:
    end = len(frame)
    if end == HEADER_LEN:  # an error response may carry no body (SMPP 3.4 §4.4.2)
        return Pdu(name, sequence, status)
    message_id, pos = _read_cstr(frame, HEADER_LEN, end, 65)
    params: dict[str, Any] = {"message_id": message_id}
    extra = _read_tlvs(frame, pos, end, {}, params) if pos < end else {}
    return Pdu(name, sequence, status, params, extra)


def _decode_empty(frame: bytes, name: str, status: int, sequence: int) -> Pdu:
    if len(frame) != HEADER_LEN:
        raise _Slow
    return Pdu(name, sequence, status)


_DECODERS = {
    **{COMMAND_IDS[n]: (n, _decode_sm) for n in _SM_COMMANDS},
    **{COMMAND_IDS[n]: (n, _decode_resp) for n in _RESP_COMMANDS},
    **{COMMAND_IDS[n]: (n, _decode_empty) for n in _EMPTY_COMMANDS},
}


def decode(frame: bytes) -> Pdu | None:
    """The decoded PDU, or None when the reference codec must handle the frame."""
    if type(frame) is not bytes:
        frame = bytes(frame)
    if len(frame) < HEADER_LEN:
        return None
    length, command_id, status, sequence = HEADER.unpack_from(frame, 0)
    entry = _DECODERS.get(command_id)
    if entry is None or length != len(frame):
        return None
    try:
        return entry[1](frame, entry[0], status, sequence)
    except _Slow:
        return None
