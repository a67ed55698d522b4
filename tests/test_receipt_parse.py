"""The delivery-receipt parser is total (issue 9: a poison receipt).

`parse_receipt` must never raise, whatever an SMSC sends: an exception there made the
gateway answer the deliver_sm with ESME_RSYSERR, and the SMSC redelivered it forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smpp.text import (
    RECEIPT_STATS,
    _parse_receipt_lenient,
    decode_text,
    format_receipt,
    parse_receipt,
)

# Every data_coding family an SMSC may label a receipt with (SMPP 3.4 §5.2.19, GSM 03.38).
DATA_CODINGS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0E, 0x11, 0x15,
                0x19, 0x31, 0xF0, 0xF4, 0xF7, 0xFF]

RECEIPT_WORDS = st.sampled_from([
    "id:", "sub:", "dlvrd:", "submit date:", "done date:", "stat:", "err:", "text:", "DELIVRD",
    "²", "³", "¹", "١٢٣", "１２", "٣", "0", "999", "99999999999999999999", " ", "\x00", "ſub:",
    "K", "\ud800", "ID:", "Stat:", "2611241200", "261124120000", "20261124120000", "000000",
    "9999999999", "ß", "İ",
])


@pytest.mark.parametrize("text", [
    "id:a sub:\xb2 stat:DELIVRD",  # the receipt seen in the field (0xB2 read as Latin-1)
    "id:a dlvrd:\xb3 stat:DELIVRD",
    "id:a sub:١٢ stat:DELIVRD",  # Arabic-Indic digits: digits to Unicode, not to SMPP
    "id:a submit date:²²²²²²²²²² stat:DELIVRD",
    "id:a done date:００００００００００ stat:DELIVRD",
])
def test_non_ascii_digits_are_not_numbers(text: str) -> None:
    r = parse_receipt(text)
    assert r is not None and r.id == "a" and r.stat == "DELIVRD"
    assert (r.sub, r.dlvrd, r.submit_date, r.done_date) == (None, None, None, None)


def test_ascii_digits_still_parse() -> None:
    r = parse_receipt("id:a sub:001 dlvrd:1 submit date:2611241200 stat:DELIVRD")
    assert r is not None and (r.sub, r.dlvrd) == (1, 1)
    assert r.submit_date is not None and r.submit_date.year == 2026


def test_keys_are_ascii_only() -> None:
    # Under Unicode case folding "ſtat" matches "stat"; an SMSC never means that.
    assert parse_receipt("id:a ſtat:DELIVRD") is None


def test_not_text_is_not_a_receipt() -> None:
    assert parse_receipt(b"id:a stat:DELIVRD") is None  # type: ignore[arg-type]
    assert parse_receipt(None) is None  # type: ignore[arg-type]


@settings(max_examples=500)
@given(st.lists(st.one_of(RECEIPT_WORDS, st.text(max_size=12)), max_size=30))
def test_receipt_like_text_never_raises(words: list[str]) -> None:
    parse_receipt("".join(words))
    parse_receipt(" ".join(words))


@settings(max_examples=300)
@given(st.binary(max_size=300), st.sampled_from(DATA_CODINGS))
def test_random_bytes_in_every_data_coding_never_raise(raw: bytes, data_coding: int) -> None:
    parse_receipt(decode_text(raw, data_coding))
    parse_receipt(decode_text(b"id:1 stat:DELIVRD sub:" + raw, data_coding))


@given(
    message_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                       max_size=24),
    sub=st.integers(0, 999), dlvrd=st.integers(0, 999),
    stat=st.sampled_from(sorted(RECEIPT_STATS)), err=st.integers(0, 999),
    body=st.text(max_size=25),
    minutes=st.integers(0, 60 * 24 * 365 * 20),
)
def test_the_canonical_fast_path_agrees_with_the_lenient_parser(
        message_id: str, sub: int, dlvrd: int, stat: str, err: int, body: str,
        minutes: int) -> None:
    """parse_receipt's one-regex path for the exact Appendix B layout gives what the lenient
    parser gives (ids with ':' or odd text fall back to it, and still agree)."""
    when = datetime(2020, 1, 1) + timedelta(minutes=minutes)
    text = format_receipt(message_id=message_id, submitted=sub, delivered=dlvrd,
                          submit_date=when, done_date=when, stat=stat, err=err, text=body)
    assert parse_receipt(text) == _parse_receipt_lenient(text)
    assert parse_receipt(text.rsplit(" text:", 1)[0]) == _parse_receipt_lenient(
        text.rsplit(" text:", 1)[0])
