"""SMS text layer, sans-IO: alphabets, splitting, UDH, reassembly, delivery receipts.

References:
- 3GPP TS 23.038 §6.2.1 (GSM 7-bit default alphabet) and §6.2.1.1 (extension table).
- 3GPP TS 23.040 §9.2.3.24.1 / §9.2.3.24.8 (concatenation IEs, 8- and 16-bit reference).
- SMPP 3.4 §5.2.19 and 3GPP TS 23.038 §4 (data_coding, see `data_coding_scheme`),
  SMPP 3.4 §5.2.12 (esm_class UDHI), §5.3.2.22-24 (sar_* TLVs),
  §5.3.2.35 (message_state) and Appendix B (delivery receipt text).

SMPP data_coding 0 carries *unpacked* septets: one septet value per octet, so nothing here
packs 7-bit data.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

__all__ = [
    "DC_BINARY",
    "DC_GSM7",
    "DC_IA5",
    "DC_LATIN1",
    "DC_UCS2",
    "ESM_UDHI",
    "MESSAGE_STATE_STAT",
    "RECEIPT_STATS",
    "STAT_MESSAGE_STATE",
    "ConcatInfo",
    "DataCoding",
    "Expired",
    "MessageTooLong",
    "NotGsm7",
    "Reassembler",
    "Receipt",
    "SplitResult",
    "choose_encoding",
    "concat_from_sar",
    "count_parts",
    "data_coding_scheme",
    "decode_text",
    "encode_text",
    "format_receipt",
    "gsm7_decode",
    "gsm7_encode",
    "gsm7_septets",
    "is_gsm7",
    "join_parts",
    "parse_receipt",
    "parse_udh",
    "split_text",
]

# SMPP 3.4 §5.2.19 data_coding values we deal with.
DC_GSM7 = 0  # SMSC default alphabet; for us GSM 03.38 unpacked
DC_IA5 = 1  # IA5 / ASCII
DC_BINARY = 4  # 8-bit binary (2 is also 8-bit binary)
DC_LATIN1 = 3  # ISO-8859-1
DC_UCS2 = 8  # UCS2; we treat it as UTF-16-BE so emoji survive

ESM_UDHI = 0x40  # SMPP 3.4 §5.2.12: short_message starts with a UDH

# --- GSM 03.38 (3GPP TS 23.038 §6.2.1) -------------------------------------------------------

# Index = septet value. 0x1B is the escape to the extension table (never a character itself).
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(_GSM_BASIC) == 128

_ESC = 0x1B

# TS 23.038 §6.2.1.1 extension table (after ESC). 0x0A is form feed (page break).
_GSM_EXT: dict[int, str] = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

# char -> encoded bytes (1 byte basic, 2 bytes ESC + code for the extension table)
_GSM_ENCODE: dict[str, bytes] = {ch: bytes((i,)) for i, ch in enumerate(_GSM_BASIC) if i != _ESC}
_GSM_ENCODE.update({ch: bytes((_ESC, code)) for code, ch in _GSM_EXT.items()})


class NotGsm7(UnicodeEncodeError):
    """Text has a character outside GSM 03.38 (a UnicodeEncodeError, hence a ValueError)."""

    def __init__(self, text: str, position: int) -> None:
        super().__init__("gsm03.38", text, position, position + 1, "not in GSM 03.38")

    def __str__(self) -> str:
        return f"character {self.object[self.start]!r} at {self.start} is not in GSM 03.38"


class MessageTooLong(ValueError):
    """More than 255 parts: the concatenation IE counts parts in one octet (TS 23.040)."""


def gsm7_encode(text: str) -> bytes:
    """Encode to unpacked GSM septets (one per byte; extension chars as 0x1B + code)."""
    out = bytearray()
    enc = _GSM_ENCODE
    for i, ch in enumerate(text):
        b = enc.get(ch)
        if b is None:
            raise NotGsm7(text, i)
        out += b
    return bytes(out)


# str.translate table: septet value (as an ASCII code point) -> GSM basic character.
_GSM_BASIC_TABLE = {i: ch for i, ch in enumerate(_GSM_BASIC)}


def gsm7_decode(data: bytes) -> str:
    """Decode unpacked GSM septets. Never raises.

    An unknown escape shows the base-table character (TS 23.038 §6.2.1.1 note: a receiver
    that does not know an extension char displays the default-alphabet one); ESC ESC (reserved
    for a further table) and a trailing ESC show a space. Octets >= 0x80 cannot occur in
    unpacked septets; they become U+FFFD.
    """
    if data.isascii() and _ESC not in data:  # the usual case: one table lookup per octet
        return data.decode("ascii").translate(_GSM_BASIC_TABLE)
    out: list[str] = []
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        i += 1
        if b >= 0x80:
            out.append("\ufffd")
        elif b == _ESC:
            if i >= n:
                out.append(" ")
                break
            c = data[i]
            i += 1
            if c in _GSM_EXT:
                out.append(_GSM_EXT[c])
            elif c == _ESC or c >= 0x80:
                out.append(" ")
            else:
                out.append(_GSM_BASIC[c])
        else:
            out.append(_GSM_BASIC[b])
    return "".join(out)


def is_gsm7(text: str) -> bool:
    enc = _GSM_ENCODE
    return all(ch in enc for ch in text)


def gsm7_septets(text: str) -> int:
    """Septets needed for ``text`` (extension chars cost 2). Raises NotGsm7."""
    enc = _GSM_ENCODE
    total = 0
    for i, ch in enumerate(text):
        b = enc.get(ch)
        if b is None:
            raise NotGsm7(text, i)
        total += len(b)
    return total


# --- data_coding ------------------------------------------------------------------------------


def choose_encoding(text: str) -> int:
    """0 (GSM 03.38) when every character fits, else 8 (UCS2)."""
    return DC_GSM7 if is_gsm7(text) else DC_UCS2


def encode_text(text: str, data_coding: int) -> bytes:
    """Encode for short_message. Raises NotGsm7 / UnicodeEncodeError / ValueError."""
    if data_coding == DC_GSM7:
        return gsm7_encode(text)
    if data_coding == DC_UCS2:
        # surrogatepass: a str holding a lone surrogate still encodes (decoded as U+FFFD).
        return text.encode("utf-16-be", "surrogatepass")
    if data_coding == DC_IA5:
        return text.encode("ascii")
    if data_coding in (DC_LATIN1, DC_BINARY, 2):
        return text.encode("latin-1")
    raise ValueError(f"unsupported data_coding {data_coding}")


class DataCoding(NamedTuple):
    """How one data_coding value is read: the alphabet, the Python codec ("gsm7" for our
    GSM 03.38 table) and, when the value is not decoded as its standard says (reserved,
    compressed, no codec), a note saying so for the caller to log."""

    alphabet: str
    codec: str
    note: str | None = None


_GSM7 = DataCoding("gsm7", "gsm7")
_OCTETS = DataCoding("8-bit data", "latin-1")  # binary shown one character per octet
_UCS2 = DataCoding("ucs2", "utf-16-be")

# SMPP 3.4 §5.2.19, values 0x00-0x0F (the SMPP table, not TS 23.038's, governs these).
_SMPP_CODINGS: dict[int, DataCoding] = {
    0x00: _GSM7,  # "SMSC default alphabet": GSM 03.38 for us
    0x01: DataCoding("ia5", "ascii"),  # IA5 (CCITT T.50) / ASCII
    0x02: _OCTETS,
    0x03: DataCoding("latin-1", "latin-1"),
    0x04: _OCTETS,
    # JIS X 0208-1990: Japanese SMSCs send it Shift_JIS-encoded.
    0x05: DataCoding("jis", "shift_jis"),
    0x06: DataCoding("cyrillic", "iso8859_5"),
    0x07: DataCoding("hebrew", "iso8859_8"),
    0x08: _UCS2,
    0x09: DataCoding("pictogram", "shift_jis",
                     "pictogram encoding (dc 9) has no standard codec: read as Shift_JIS"),
    0x0A: DataCoding("iso-2022-jp", "iso2022_jp"),  # ISO-2022-JP (music codes)
    0x0D: DataCoding("extended-kanji-jis", "euc_jp"),  # JIS X 0212-1990, EUC-JP form
    0x0E: DataCoding("ks-c-5601", "euc_kr"),  # KS C 5601, EUC-KR form
}


def _fallback(data_coding: object, why: str) -> DataCoding:
    # TS 23.038 §4: "Any reserved codings shall be assumed to be the GSM 7 bit default
    # alphabet (the same as codepoint 00000000) by a receiving entity."
    return _GSM7._replace(note=f"data_coding {data_coding!r} {why}: read as GSM 7-bit")


def _alphabet_bits(dc: int) -> DataCoding:
    """Bits 3-2 of the general / automatic-deletion groups (TS 23.038 §4)."""
    alphabet = (dc >> 2) & 0x03
    if dc & 0x20:  # bit 5: compressed (TS 23.042), which no SMSC we know of sends
        base = _OCTETS if alphabet != 0 else _GSM7
        return base._replace(note=f"data_coding 0x{dc:02X} is compressed (TS 23.042), "
                                  f"not decompressed: shown as {base.alphabet}")
    if alphabet == 0:
        return _GSM7
    if alphabet == 1:
        return _OCTETS
    if alphabet == 2:
        return _UCS2
    return _fallback(dc, "has a reserved alphabet")


def data_coding_scheme(data_coding: int) -> DataCoding:
    """The alphabet of an SMPP data_coding value (SMPP 3.4 §5.2.19, 3GPP TS 23.038 §4).

    0x00-0x0F: the SMPP table. 0x10-0x3F general data coding and 0x40-0x7F automatic
    deletion (bits 3-2: GSM 7-bit / 8-bit / UCS2; bit 5 compressed), 0xC0-0xDF message
    waiting (GSM 7-bit), 0xE0-0xEF message waiting (UCS2), 0xF0-0xFF data coding / message
    class (bit 2: GSM 7-bit or 8-bit). Reserved values (0x0B, 0x0C, 0x0F, 0x80-0xBF, out of
    range) fall back to GSM 7-bit as TS 23.038 tells a receiver to, with a note.
    """
    if not isinstance(data_coding, int) or not 0 <= data_coding <= 0xFF:
        return _fallback(data_coding, "is out of range")
    dc = data_coding
    if dc <= 0x0F:
        return _SMPP_CODINGS.get(dc) or _fallback(dc, "is reserved (SMPP 3.4 §5.2.19)")
    if dc <= 0x7F:
        return _alphabet_bits(dc)
    if dc <= 0xBF:
        return _fallback(dc, "is a reserved coding group (TS 23.038 §4)")
    if dc <= 0xDF:
        return _GSM7
    if dc <= 0xEF:
        return _UCS2
    return _OCTETS if dc & 0x04 else _GSM7


def decode_text(data: bytes, data_coding: int) -> str:
    """Decode short_message / message_payload by `data_coding_scheme`. Never raises, on any
    bytes and any data_coding: undecodable input becomes U+FFFD. Callers that log should
    check ``data_coding_scheme(dc).note``, set when the value was not decoded as specified."""
    data = bytes(data)
    codec = data_coding_scheme(data_coding).codec
    if codec == "gsm7":
        # Many SMSCs send Latin-1 with dc 0; octets >= 0x80 cannot be unpacked septets.
        if any(b >= 0x80 for b in data):
            return data.decode("latin-1")
        return gsm7_decode(data)
    # utf-16-be for UCS2 so surrogate pairs work; odd length, lone surrogates and every other
    # codec's undecodable sequences become U+FFFD. latin-1 (octets) maps every byte.
    return data.decode(codec, "replace")


def join_parts(parts: Sequence[tuple[bytes, int]]) -> str:
    """The whole text of a concatenated message from its parts' (user data, data_coding), in
    order. Parts sharing one data_coding are joined as octets first and decoded once, so a
    character a sender split across two parts (a GSM escape pair, a UTF-16 surrogate pair:
    smpplib splits at any octet) comes out whole."""
    codings = {dc for _, dc in parts}
    if len(codings) == 1:
        return decode_text(b"".join(bytes(data) for data, _ in parts), codings.pop())
    return "".join(decode_text(data, dc) for data, dc in parts)


# --- splitting (TS 23.040 §9.2.3.24.1) ------------------------------------------------------


@dataclass(frozen=True)
class SplitResult:
    data_coding: int
    esm_class: int  # ESM_UDHI when multipart, else 0
    parts: list[bytes]  # short_message bodies, UDH prepended when multipart


# data_coding -> (single-part limit, per-part limit with the 6-octet UDH, octets per unit).
# GSM: 160 / 153 septets (unpacked: one octet each). UCS2: 70 / 67 UTF-16 code units.
# Latin-1 / 8-bit: 140 / 134 octets.
_LIMITS: dict[int, tuple[int, int, int]] = {
    DC_GSM7: (160, 153, 1),
    DC_UCS2: (70, 67, 2),
    DC_LATIN1: (140, 134, 1),
    DC_BINARY: (140, 134, 1),
}
_MAX_PARTS = 255


def _units(text: str, data_coding: int) -> list[bytes]:
    """Per character, its encoded bytes: the indivisible units a split must keep whole
    (a GSM escape pair; a UTF-16 surrogate pair)."""
    if data_coding == DC_GSM7:
        enc = _GSM_ENCODE
        units: list[bytes] = []
        for i, ch in enumerate(text):
            b = enc.get(ch)
            if b is None:
                raise NotGsm7(text, i)
            units.append(b)
        return units
    if data_coding == DC_UCS2:
        return [ch.encode("utf-16-be", "surrogatepass") for ch in text]
    if data_coding in (DC_LATIN1, DC_BINARY):
        return [ch.encode("latin-1") for ch in text]
    raise ValueError(f"cannot split for data_coding {data_coding}")


def _chunks(costs: Iterable[int], single: int, multi: int) -> list[int]:
    """Greedy split; returns the unit index where each part ends (exclusive)."""
    costs = list(costs)
    if sum(costs) <= single:
        return [len(costs)]
    ends: list[int] = []
    used = 0
    for i, c in enumerate(costs):
        if used + c > multi:
            ends.append(i)
            used = 0
        used += c
    ends.append(len(costs))
    return ends


def _plan(text: str, data_coding: int | None) -> tuple[int, list[bytes], list[int]]:
    dc = choose_encoding(text) if data_coding is None else data_coding
    if dc not in _LIMITS:
        raise ValueError(f"cannot split for data_coding {dc}")
    single, multi, width = _LIMITS[dc]
    units = _units(text, dc)
    ends = _chunks((len(u) // width for u in units), single, multi)
    if len(ends) > _MAX_PARTS:
        raise MessageTooLong(
            f"text needs {len(ends)} parts; at most {_MAX_PARTS} can be concatenated"
        )
    return dc, units, ends


def count_parts(text: str, data_coding: int | None = None) -> int:
    """Number of SMS parts ``split_text`` produces (same rule, exactly)."""
    return len(_plan(text, data_coding)[2])


def split_text(text: str, *, ref: int, data_coding: int | None = None) -> SplitResult:
    """Encode and split ``text``; multipart bodies carry the 8-bit-reference concat UDH
    ``05 00 03 ref total seq`` (TS 23.040 §9.2.3.24.1)."""
    if not 0 <= ref <= 0xFF:
        raise ValueError(f"concatenation ref {ref} is not an 8-bit value")
    dc, units, ends = _plan(text, data_coding)
    if len(ends) == 1:
        return SplitResult(dc, 0, [b"".join(units)])
    total = len(ends)
    parts: list[bytes] = []
    start = 0
    for seq, end in enumerate(ends, 1):
        udh = bytes((0x05, 0x00, 0x03, ref, total, seq))
        parts.append(udh + b"".join(units[start:end]))
        start = end
    return SplitResult(dc, ESM_UDHI, parts)


# --- inbound UDH / SAR ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConcatInfo:
    ref: int
    total: int
    seq: int


def _valid_concat(ref: int, total: int, seq: int) -> ConcatInfo | None:
    # TS 23.040 §9.2.3.24.1: total 0, seq 0 or seq > total -> ignore the IE.
    if total < 1 or seq < 1 or seq > total:
        return None
    return ConcatInfo(ref, total, seq)


def parse_udh(short_message: bytes, esm_class: int) -> tuple[ConcatInfo | None, bytes]:
    """Split a UDH off ``short_message`` when esm_class has UDHI.

    Returns (concat info or None, payload). A malformed UDH gives (None, original bytes).
    """
    sm = bytes(short_message)
    if not esm_class & ESM_UDHI or not sm:
        return None, sm
    udhl = sm[0]
    end = 1 + udhl
    if end > len(sm):
        return None, sm
    info: ConcatInfo | None = None
    i = 1
    while i < end:
        if i + 2 > end:
            return None, sm  # IE header overruns the UDH
        iei, iel = sm[i], sm[i + 1]
        if i + 2 + iel > end:
            return None, sm  # IE data overruns the UDH
        data = sm[i + 2 : i + 2 + iel]
        if info is None:
            if iei == 0x00 and iel == 3:
                info = _valid_concat(data[0], data[1], data[2])
            elif iei == 0x08 and iel == 4:
                info = _valid_concat((data[0] << 8) | data[1], data[2], data[3])
        i += 2 + iel
    return info, sm[end:]


def concat_from_sar(
    sar_msg_ref_num: int | None,
    sar_total_segments: int | None,
    sar_segment_seqnum: int | None,
) -> ConcatInfo | None:
    """ConcatInfo from the SMPP 3.4 sar_* TLVs (§5.3.2.22-24), None if absent or invalid."""
    if sar_msg_ref_num is None or sar_total_segments is None or sar_segment_seqnum is None:
        return None
    return _valid_concat(sar_msg_ref_num, sar_total_segments, sar_segment_seqnum)


# --- reassembly -------------------------------------------------------------------------------


class Expired(NamedTuple):
    """An incomplete group dropped by ``Reassembler.expire``."""

    key: Hashable
    parts: dict[int, str]  # seq -> text of the parts that did arrive
    missing: list[int]  # seq numbers that never came

    @property
    def partial_text(self) -> str:
        return "".join(self.parts[s] for s in sorted(self.parts))


@dataclass
class _Group:
    first_seen: float
    total: int
    parts: dict[int, str] = field(default_factory=dict)


class Reassembler:
    """Joins concatenated parts. Sans-IO: the caller passes a monotonic ``now``.

    Groups are keyed by (key, ref, total). Completed groups are remembered for ``timeout``
    seconds so that a redelivered part (same seq, same text) of an already joined message
    is ignored instead of opening a new group that would later expire as "incomplete".
    A receiver that never sees redeliveries (a handset: the SMSC delivers each accepted part
    once) passes ``remember_completed=False``: a completed message then frees its reference
    at once, and an identical message reusing it is joined again.
    """

    def __init__(self, timeout: float = 60.0, max_groups: int = 10_000, *,
                 remember_completed: bool = True) -> None:
        self.timeout = timeout
        self.max_groups = max_groups
        self.remember_completed = remember_completed
        self._groups: dict[tuple[Hashable, int, int], _Group] = {}
        self._done: dict[tuple[Hashable, int, int], tuple[float, dict[int, str]]] = {}
        self._evicted: list[Expired] = []

    @property
    def pending(self) -> int:
        return len(self._groups)

    def add(self, key: Hashable, info: ConcatInfo, payload_text: str, now: float) -> str | None:
        """Add one part; return the whole text when this part completes its message."""
        gkey = (key, info.ref, info.total)
        if info.total <= 1:
            return payload_text
        if not 1 <= info.seq <= info.total:
            return None
        done = self._done.get(gkey)
        if done is not None:
            done_at, done_parts = done
            if now - done_at <= self.timeout and done_parts.get(info.seq) == payload_text:
                return None  # redelivery of a part of a message already joined
            del self._done[gkey]
        group = self._groups.get(gkey)
        if group is None:
            if len(self._groups) >= self.max_groups:
                self._evict_oldest()
            group = self._groups[gkey] = _Group(now, info.total)
        if info.seq in group.parts:
            return None  # duplicate part: first copy wins
        group.parts[info.seq] = payload_text
        if len(group.parts) < group.total:
            return None
        del self._groups[gkey]
        if self.remember_completed:
            self._done[gkey] = (now, group.parts)
        return "".join(group.parts[s] for s in range(1, group.total + 1))

    def expire(self, now: float) -> list[Expired]:
        """Drop and return incomplete groups older than ``timeout`` (plus any evicted for
        space), so the caller can tell the sender what was lost."""
        out, self._evicted = self._evicted, []
        for gkey, group in list(self._groups.items()):
            if now - group.first_seen >= self.timeout:
                del self._groups[gkey]
                out.append(self._expired(gkey, group))
        for gkey, (done_at, _) in list(self._done.items()):
            if now - done_at > self.timeout:
                del self._done[gkey]
        return out

    def _evict_oldest(self) -> None:
        gkey = min(self._groups, key=lambda k: self._groups[k].first_seen)
        self._evicted.append(self._expired(gkey, self._groups.pop(gkey)))

    @staticmethod
    def _expired(gkey: tuple[Hashable, int, int], group: _Group) -> Expired:
        missing = [s for s in range(1, group.total + 1) if s not in group.parts]
        return Expired(gkey[0], dict(group.parts), missing)


# --- delivery receipts (SMPP 3.4 Appendix B, §5.3.2.35) -------------------------------------

RECEIPT_STATS = frozenset(
    {"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE"}
)

# message_state TLV (§5.3.2.35) -> receipt stat word
MESSAGE_STATE_STAT: dict[int, str] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
STAT_MESSAGE_STATE: dict[str, int] = {v: k for k, v in MESSAGE_STATE_STAT.items()}

# Spelled-out stats some SMSCs send instead of the 7-letter words.
_STAT_ALIASES = {
    "DELIVERED": "DELIVRD",
    "UNDELIVERABLE": "UNDELIV",
    "UNDELIVERED": "UNDELIV",
    "ACCEPTED": "ACCEPTD",
    "REJECTED": "REJECTD",
}


@dataclass(frozen=True)
class Receipt:
    id: str
    sub: int | None
    dlvrd: int | None
    submit_date: datetime | None  # naive: Appendix B dates carry no zone (SMSC local time)
    done_date: datetime | None
    stat: str  # upper-cased; spelled-out forms mapped to the 7-letter words
    err: str | None  # kept as text: some SMSCs send alphanumeric or hex error codes
    text: str | None  # None when the receipt has no "text:" field


def _clamp3(n: int) -> int:
    return max(0, min(999, n))


def format_receipt(
    *,
    message_id: str,
    submitted: int,
    delivered: int,
    submit_date: datetime,
    done_date: datetime,
    stat: str,
    err: int,
    text: str,
) -> str:
    """Receipt short_message text in the Appendix B layout."""
    stat = stat.upper()
    if stat not in RECEIPT_STATS:
        raise ValueError(f"unknown receipt stat {stat!r}")
    return (
        f"id:{message_id} sub:{_clamp3(submitted):03d} dlvrd:{_clamp3(delivered):03d} "
        f"submit date:{submit_date:%y%m%d%H%M} done date:{done_date:%y%m%d%H%M} "
        f"stat:{stat} err:{_clamp3(err):03d} text:{text[:20]}"
    )


_KEY_RE = re.compile(
    r"(?<![A-Za-z0-9_])(id|sub|dlvrd|submit[ _]*date|done[ _]*date|stat|err|text)\s*:",
    # ASCII: under Unicode case folding "ſub:" (long s) or "K" (Kelvin) would count as keys.
    re.IGNORECASE | re.ASCII,
)


# Appendix B exactly as `format_receipt` writes it; anything else takes the lenient path.
_CANONICAL_RECEIPT = re.compile(
    r"id:(?P<id>[!-9;-~]+) sub:(?P<sub>[0-9]{3}) dlvrd:(?P<dlvrd>[0-9]{3}) "
    r"submit date:(?P<submit>[0-9]{10}) done date:(?P<done>[0-9]{10}) "
    r"stat:(?P<stat>[A-Za-z]+) err:(?P<err>[0-9A-Za-z]+)(?: text:(?P<text>.*))?",
    re.ASCII | re.DOTALL)


def _ascii_digits(value: str) -> bool:
    """Only 0-9: str.isdigit() is also true for '²' or '١', which int()/strptime refuse."""
    return value.isascii() and value.isdigit()


def _parse_date(value: str) -> datetime | None:
    digits = value.strip()
    if not _ascii_digits(digits) or len(digits) not in (10, 12, 14):
        return None
    if len(digits) != 14:
        digits = "20" + digits  # YY is always 20YY here (strptime's %y reads 69-99 as 19xx)
    # Sliced by hand: strptime cost more than the rest of a receipt (a receipt per MT).
    try:
        return datetime(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]),
                        int(digits[8:10]), int(digits[10:12]), int(digits[12:14] or 0))
    except ValueError:
        return None


def _parse_int(value: str) -> int | None:
    value = value.strip()
    return int(value) if _ascii_digits(value) else None


def parse_receipt(text: str) -> Receipt | None:
    """Parse an Appendix B receipt, leniently. None when ``text`` is not a receipt
    (it must at least carry ``id:`` and ``stat:``).

    Total: never raises, whatever the text (an exception here would make us answer the
    deliver_sm with an error, and the SMSC would redeliver that receipt forever). A field
    that does not parse is None; the caller keeps the raw text.
    """
    if not isinstance(text, str):
        return None
    m = _CANONICAL_RECEIPT.fullmatch(text)
    if m is not None:  # the exact Appendix B layout (most SMSCs): one regex, same result
        stat = m["stat"].upper()
        return Receipt(
            id=m["id"], stat=_STAT_ALIASES.get(stat, stat), sub=int(m["sub"]),
            dlvrd=int(m["dlvrd"]), submit_date=_parse_date(m["submit"]),
            done_date=_parse_date(m["done"]), err=m["err"],
            text=m["text"].strip() if m["text"] is not None else None)
    return _parse_receipt_lenient(text)


def _parse_receipt_lenient(text: str) -> Receipt | None:
    """Any key order, spacing and case; missing fields are None (see parse_receipt)."""
    fields: dict[str, str] = {}
    matches = list(_KEY_RE.finditer(text))
    nexts: list[re.Match[str] | None] = [*matches[1:], None]
    for m, nxt in zip(matches, nexts, strict=False):
        key = re.sub(r"[ _]+", " ", m.group(1).lower())
        key = key.replace("submitdate", "submit date").replace("donedate", "done date")
        if key == "text":
            # Free text runs to the end, whatever it contains (even "stat:").
            fields.setdefault("text", text[m.end() :].strip())
            break
        value = text[m.end() : nxt.start() if nxt else len(text)].strip()
        fields.setdefault(key, value)
    msg_id = fields.get("id", "").split()
    stat_words = fields.get("stat", "").split()
    if not msg_id or not stat_words:
        return None
    stat = stat_words[0].upper()
    stat = _STAT_ALIASES.get(stat, stat)
    err_words = fields.get("err", "").split()
    return Receipt(
        id=msg_id[0],
        stat=stat,
        sub=_parse_int(fields.get("sub", "")),
        dlvrd=_parse_int(fields.get("dlvrd", "")),
        submit_date=_parse_date(fields.get("submit date", "")),
        done_date=_parse_date(fields.get("done date", "")),
        err=err_words[0] if err_words else None,
        text=fields.get("text"),
    )

