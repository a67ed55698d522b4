"""SMPP 3.4 PDU codec: one small interface, smpplib underneath.

smpplib supplies the command tables and the encoder. Decoding is ours, driven by the same
tables, because smpplib's decoder has pitfalls we cannot afford on untrusted input
(notes-measured.md): a known TLV missing from a command's table raises KeyError, a TLV of an
unexpected length raises struct.error, unknown TLVs log a warning per PDU, and cancel_sm,
replace_sm, submit_multi and outbind are not parsed at all. Here every malformed frame becomes
one `DecodeError` carrying the header, so the session can answer with generic_nack.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from smpplib import command as _cmd
from smpplib import command_codes as _codes
from smpplib import consts as _consts

from gateway.smpp import status as st

HEADER = struct.Struct(">LLLL")
HEADER_LEN = 16

COMMAND_IDS: dict[str, int] = dict(_codes.commands)
COMMAND_NAMES: dict[int, str] = {v: k for k, v in COMMAND_IDS.items()}
TLV_NAMES: dict[int, str] = {v: k for k, v in _consts.OPTIONAL_PARAMS.items()}

# smpplib has no classes for these; their bodies are not needed by the gateway, so they are
# carried as header + raw body and answered by the application (SMPP 3.4 §4.8-4.10, §4.5).
_HEADER_ONLY = {
    "cancel_sm", "cancel_sm_resp", "replace_sm", "replace_sm_resp",
    "submit_multi", "submit_multi_resp", "outbind",
}


class CodecError(Exception):
    """A PDU that cannot be encoded or decoded."""


class EncodeError(CodecError):
    pass


@dataclass(slots=True)
class DecodeError(CodecError):
    """An undecodable frame; the header fields are kept so it can be nacked."""

    reason: str
    command_id: int = 0
    sequence: int = 0
    status: int = st.ESME_RINVCMDLEN
    # The header was sound (known command_id, command_length matching the frame) and a
    # field of the body was not: such a request is answered with its own response PDU and
    # this status, not generic_nack (SMPP 3.4 §4.3: generic_nack is for header faults).
    in_body: bool = False

    def __str__(self) -> str:
        return self.reason


@dataclass(slots=True)
class Pdu:
    """One decoded PDU. C-strings are `str`, octet strings `bytes`, integers `int`."""

    command: str
    sequence: int = 0
    status: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    # TLVs this command does not define; kept so nothing the peer sent is silently lost.
    extra_tlvs: dict[int, bytes] = field(default_factory=dict)
    body: bytes = b""  # raw body, kept only for header-only commands

    @property
    def command_id(self) -> int:
        return COMMAND_IDS[self.command]

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name)
        return default if value is None else value


class _Seq:
    """The sequence holder smpplib insists on (pitfall 2); we set sequences ourselves."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


_SEQ = _Seq()


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: str  # "int", "str", "ostr"
    size: int | None  # fixed size for ints / fixed strings
    max: int | None  # max octets for C-strings, NUL included
    len_field: str | None


@dataclass(frozen=True, slots=True)
class _Layout:
    mandatory: tuple[_Field, ...]
    optional: dict[int, _Field]  # by TLV tag


def _kind(param: Any) -> str:
    if param.type is int:
        return "int"
    if param.type is str:
        return "str"
    return "ostr"  # smpplib's ostr and flag types are both octets here


def _build_layouts() -> dict[str, _Layout]:
    layouts: dict[str, _Layout] = {}
    for name in COMMAND_IDS:
        if name in _HEADER_ONLY:
            continue
        proto = _cmd.factory(name, client=_SEQ)
        mandatory: list[_Field] = []
        optional: dict[int, _Field] = {}
        for fname in proto.params_order:
            p = proto.params[fname]
            f = _Field(fname, _kind(p), getattr(p, "size", None), getattr(p, "max", None),
                       getattr(p, "len_field", None))
            if proto.field_is_optional(fname):
                optional[_consts.OPTIONAL_PARAMS[fname]] = f
            else:
                mandatory.append(f)
        layouts[name] = _Layout(tuple(mandatory), optional)
    return layouts


_LAYOUTS = _build_layouts()
_INT_FORMATS = {1: ">B", 2: ">H", 4: ">L"}


def decode_header(frame: bytes) -> tuple[int, int, int, int]:
    """(command_length, command_id, command_status, sequence_number)."""
    return HEADER.unpack_from(frame, 0)


def decode(frame: bytes) -> Pdu:
    """Decode one whole frame (header included). Raises DecodeError."""
    pdu = _fast.decode(frame)
    return pdu if pdu is not None else decode_reference(frame)


def encode(pdu: Pdu) -> bytes:
    """Encode a PDU. Raises EncodeError on values smpplib would silently truncate."""
    data = _fast.encode(pdu)
    return data if data is not None else encode_reference(pdu)


def decode_reference(frame: bytes) -> Pdu:
    """`decode` by the tables, for every command (the fast path's reference and fallback)."""
    if len(frame) < HEADER_LEN:
        raise DecodeError(f"frame of {len(frame)} octets is shorter than a header")
    length, command_id, status, sequence = HEADER.unpack_from(frame, 0)
    name = COMMAND_NAMES.get(command_id)
    if name is None:
        raise DecodeError(f"unknown command_id 0x{command_id:08x}", command_id, sequence,
                          st.ESME_RINVCMDID)
    if length != len(frame):
        raise DecodeError(f"command_length {length} but frame has {len(frame)} octets",
                          command_id, sequence, st.ESME_RINVCMDLEN)
    pdu = Pdu(name, sequence, status)
    body = memoryview(frame)[HEADER_LEN:]
    if name in _HEADER_ONLY:
        pdu.body = bytes(body)
        return pdu
    try:
        _decode_body(pdu, _LAYOUTS[name], body)
    except DecodeError as exc:
        exc.command_id, exc.sequence, exc.in_body = command_id, sequence, True
        raise
    return pdu


def _decode_body(pdu: Pdu, layout: _Layout, body: memoryview) -> None:
    pos, end = 0, len(body)
    params = pdu.params
    for f in layout.mandatory:
        if pos >= end:
            # Responses with an error status may omit the body (SMPP 3.4 §4.4.2).
            break
        if f.kind == "int":
            size = f.size or 1
            if pos + size > end:
                raise DecodeError(f"{pdu.command}.{f.name} runs past the end of the PDU")
            params[f.name] = int.from_bytes(body[pos:pos + size], "big")
            pos += size
        elif f.kind == "str":
            nul = bytes(body[pos:]).find(b"\0")
            if nul < 0:
                raise DecodeError(f"{pdu.command}.{f.name} is not NUL-terminated",
                                  status=st.ESME_RINVCMDLEN)
            if f.max is not None and nul + 1 > f.max:
                raise DecodeError(f"{pdu.command}.{f.name} is longer than {f.max - 1} octets",
                                  status=_too_long_status(f.name))
            params[f.name] = bytes(body[pos:pos + nul]).decode("latin-1")
            pos += nul + 1
        else:
            n = int(params.get(f.len_field or "", 0) or 0)
            if pos + n > end:
                raise DecodeError(f"{pdu.command}.{f.name} length {n} runs past the end",
                                  status=st.ESME_RINVMSGLEN)
            params[f.name] = bytes(body[pos:pos + n])
            pos += n
    while pos < end:
        if pos + 4 > end:
            raise DecodeError(f"truncated TLV header in {pdu.command}",
                              status=st.ESME_RINVOPTPARSTREAM)
        tag = int.from_bytes(body[pos:pos + 2], "big")
        tlen = int.from_bytes(body[pos + 2:pos + 4], "big")
        pos += 4
        if pos + tlen > end:
            raise DecodeError(f"TLV 0x{tag:04x} length {tlen} runs past the end",
                              status=st.ESME_RINVOPTPARSTREAM)
        value = bytes(body[pos:pos + tlen])
        pos += tlen
        f = layout.optional.get(tag)
        if f is None:
            pdu.extra_tlvs[tag] = value
        elif f.kind == "int":
            if tlen not in (1, 2, 4):
                raise DecodeError(f"TLV {f.name} has length {tlen}", status=st.ESME_RINVPARLEN)
            params[f.name] = int.from_bytes(value, "big")
        elif f.kind == "str":
            params[f.name] = value.rstrip(b"\0").decode("latin-1")
        else:
            params[f.name] = value


def _too_long_status(field_name: str) -> int:
    return {
        "source_addr": st.ESME_RINVSRCADR,
        "destination_addr": st.ESME_RINVDSTADR,
        "system_id": st.ESME_RINVSYSID,
        "password": st.ESME_RINVPASWD,
    }.get(field_name, st.ESME_RINVCMDLEN)


def encode_reference(pdu: Pdu) -> bytes:
    """`encode` by smpplib, for every command (the fast path's reference and fallback)."""
    command_id = COMMAND_IDS.get(pdu.command)
    if command_id is None:
        raise EncodeError(f"unknown command {pdu.command!r}")
    if pdu.command in _HEADER_ONLY:
        return HEADER.pack(HEADER_LEN + len(pdu.body), command_id, pdu.status, pdu.sequence) \
            + pdu.body
    layout = _LAYOUTS[pdu.command]
    obj = _cmd.factory(pdu.command, client=_SEQ)
    # TLVs are encoded here, not by smpplib: it writes C-string TLVs as UTF-8 (mandatory
    # C-strings as latin-1, and our decoder reads latin-1), never writes flag TLVs
    # (alert_on_message_delivery) and drops empty octet-string TLVs.
    tlvs: list[bytes] = []
    for name, value in pdu.params.items():
        if value is None:
            continue
        f, tag = _field(layout, name)
        if f is None:
            raise EncodeError(f"{pdu.command} has no field {name!r}")
        if f.kind == "str":
            if not isinstance(value, str):
                raise EncodeError(f"{pdu.command}.{name} must be str")
            try:
                raw = value.encode("latin-1", "strict")
            except UnicodeEncodeError as exc:
                raise EncodeError(f"{pdu.command}.{name} is not latin-1: {exc}") from exc
            if b"\0" in raw:
                raise EncodeError(f"{pdu.command}.{name} contains NUL")
            # smpplib cuts long strings silently (pitfall 4); refuse instead.
            if f.max is not None and len(raw) + 1 > f.max:
                raise EncodeError(f"{pdu.command}.{name} is longer than {f.max - 1} octets")
            if tag is not None:
                tlvs.append(_tlv(tag, raw + b"\0"))
                continue
        elif f.kind == "ostr":
            if not isinstance(value, bytes | bytearray):
                raise EncodeError(f"{pdu.command}.{name} must be bytes")
            if name == "short_message" and len(value) > 254:
                raise EncodeError("short_message is longer than 254 octets")
            if tag is not None:
                if f.size is not None and len(value) != f.size:
                    raise EncodeError(f"{pdu.command}.{name} must be {f.size} octets")
                tlvs.append(_tlv(tag, bytes(value)))
                continue
            value = bytes(value)
        elif not isinstance(value, int) or value < 0 or value >= 1 << (8 * (f.size or 1)):
            raise EncodeError(f"{pdu.command}.{name} must be an int of {f.size or 1} octets")
        elif tag is not None:
            tlvs.append(_tlv(tag, value.to_bytes(f.size or 1, "big")))
            continue
        setattr(obj, name, value)
    if pdu.params.get("short_message") and pdu.params.get("message_payload") is not None:
        raise EncodeError(f"{pdu.command}: short_message and message_payload are exclusive")
    obj.sequence = pdu.sequence  # pitfall 1: the constructor ignores sequence=
    obj.status = pdu.status
    try:
        data = obj.generate()
    except Exception as exc:  # smpplib raises assorted types; one error for callers
        raise EncodeError(f"{pdu.command}: {exc}") from exc
    tlvs.extend(_tlv(t, v) for t, v in pdu.extra_tlvs.items())
    if tlvs:
        extra = b"".join(tlvs)
        data = struct.pack(">L", len(data) + len(extra)) + data[4:] + extra
    return data


def _tlv(tag: int, value: bytes) -> bytes:
    if not isinstance(tag, int) or not 0 <= tag <= 0xFFFF:
        raise EncodeError(f"TLV tag {tag!r} is not a 16-bit integer")
    if not isinstance(value, bytes | bytearray):
        raise EncodeError(f"TLV 0x{tag:04x} value must be bytes")
    if len(value) > 0xFFFF:
        raise EncodeError(f"TLV 0x{tag:04x} value of {len(value)} octets exceeds 65535")
    return struct.pack(">HH", tag, len(value)) + bytes(value)


def _field(layout: _Layout, name: str) -> tuple[_Field | None, int | None]:
    """The field and, for a TLV, its tag (None for a mandatory field)."""
    for f in layout.mandatory:
        if f.name == name:
            return f, None
    tag = _consts.OPTIONAL_PARAMS.get(name)
    if tag is None or tag not in layout.optional:
        return None, None
    return layout.optional[tag], tag


def response_name(request: str) -> str:
    return request + "_resp"


def is_request_id(command_id: int) -> bool:
    return not command_id & 0x80000000


# The hot PDUs take a plain-struct path cross-checked against the reference above; it builds
# on this module's tables, hence imported last.
from gateway.smpp import fastcodec as _fast  # noqa: E402
