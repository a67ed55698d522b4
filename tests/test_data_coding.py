"""gateway.smpp.text.decode_text: every data_coding family of SMPP 3.4 §5.2.19 and
3GPP TS 23.038 §4, decoded exactly; unknown values fall back with a note, never raise."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.smpp.text import data_coding_scheme, decode_text, gsm7_encode

GSM = "Hello {€} @£$ ÄÖ"
HELP_ZH = "帮助"
EMOJI = "ok 😀"  # an astral character: a UTF-16 surrogate pair


# (data_coding, raw bytes, expected text): one row per family.
SMPP_TABLE = [
    (0x00, gsm7_encode(GSM), GSM),
    (0x01, b"BAL 42", "BAL 42"),
    (0x02, b"\x00\x01\xff", "\x00\x01\xff"),
    (0x03, "café".encode("latin-1"), "café"),
    (0x04, b"\x7f\x80", "\x7f\x80"),
    (0x05, "注文".encode("shift_jis"), "注文"),
    (0x06, "Привет".encode("iso8859_5"), "Привет"),
    (0x07, "שלום".encode("iso8859_8"), "שלום"),
    (0x08, (HELP_ZH + EMOJI).encode("utf-16-be"), HELP_ZH + EMOJI),
    (0x0A, "注文".encode("iso2022_jp"), "注文"),
    (0x0D, "注文".encode("euc_jp"), "注文"),
    (0x0E, "안녕".encode("euc_kr"), "안녕"),
]


@pytest.mark.parametrize(("dc", "raw", "text"), SMPP_TABLE, ids=lambda v: f"{v}")
def test_smpp_table(dc: int, raw: bytes, text: str) -> None:
    assert decode_text(raw, dc) == text
    assert data_coding_scheme(dc).note is None


@pytest.mark.parametrize("dc", [0x19, 0x18, 0x08 | 0x10, 0x1A, 0x1B])
def test_general_group_ucs2_decodes_chinese(dc: int) -> None:
    # Issue 8: 帮助 with data_coding 0x19 (UCS2, class 1) was read as Latin-1 → E01.
    assert decode_text(HELP_ZH.encode("utf-16-be"), dc) == HELP_ZH


@pytest.mark.parametrize(("dc", "raw", "text"), [
    (0x10, gsm7_encode(GSM), GSM),  # general group, class meaning, GSM 7-bit
    (0x11, gsm7_encode(GSM), GSM),
    (0x14, b"\x01\xe9", "\x01\xe9"),  # 8-bit data
    (0x18, EMOJI.encode("utf-16-be"), EMOJI),
    (0x40, gsm7_encode(GSM), GSM),  # automatic deletion group: same bits
    (0x44, b"\xe9", "\xe9"),
    (0x48, HELP_ZH.encode("utf-16-be"), HELP_ZH),
    (0x59, HELP_ZH.encode("utf-16-be"), HELP_ZH),
    (0xC0, gsm7_encode(GSM), GSM),  # message waiting, discard: GSM 7-bit
    (0xD8, gsm7_encode(GSM), GSM),  # message waiting, store: GSM 7-bit
    (0xE0, HELP_ZH.encode("utf-16-be"), HELP_ZH),  # message waiting, store: UCS2
    (0xEB, HELP_ZH.encode("utf-16-be"), HELP_ZH),
    (0xF0, gsm7_encode(GSM), GSM),  # message class, bit 2 clear: GSM 7-bit
    (0xF1, gsm7_encode(GSM), GSM),
    (0xF4, b"\x00\xe9", "\x00\xe9"),  # bit 2 set: 8-bit data
    (0xF5, b"\xe9", "\xe9"),
])
def test_tsg_23038_groups(dc: int, raw: bytes, text: str) -> None:
    assert decode_text(raw, dc) == text
    assert data_coding_scheme(dc).note is None


@pytest.mark.parametrize("dc", [0x0B, 0x0C, 0x0F, 0x80, 0xBF, 0x1C, 0x5D, 256, -1])
def test_reserved_values_fall_back_to_gsm7_with_a_note(dc: int) -> None:
    # TS 23.038 §4: a receiver assumes the GSM 7-bit default alphabet for reserved codings.
    scheme = data_coding_scheme(dc)
    assert scheme.codec == "gsm7"
    assert scheme.note is not None and "GSM 7-bit" in scheme.note
    assert decode_text(gsm7_encode(GSM), dc) == GSM


@pytest.mark.parametrize("dc", [0x20, 0x24, 0x28, 0x39, 0x60, 0x6A])
def test_compressed_is_flagged(dc: int) -> None:
    scheme = data_coding_scheme(dc)
    assert scheme.note is not None and "compressed" in scheme.note
    assert isinstance(decode_text(b"\x00\xff\x10", dc), str)


def test_pictogram_is_flagged_but_decoded() -> None:
    assert decode_text("ABC".encode("shift_jis"), 9) == "ABC"
    assert data_coding_scheme(9).note is not None


def test_undecodable_bytes_become_replacement_characters() -> None:
    assert decode_text(b"\xff\xfe\xfd", 0x0E).count("\ufffd") >= 1
    assert decode_text(b"\x81", 0x05) == "\ufffd"
    assert decode_text(b"\x1b$B\xff\xff", 0x0A).startswith("\ufffd")
    assert decode_text(b"\xd8\x3d", 0x19) == "\ufffd"  # lone surrogate in a general-group UCS2
    assert decode_text(b"abc\xff", 1) == "abc\ufffd"


@given(st.binary(max_size=300), st.integers(min_value=-5, max_value=600))
def test_never_raises(data: bytes, dc: int) -> None:
    assert isinstance(decode_text(data, dc), str)
    assert isinstance(data_coding_scheme(dc).codec, str)
