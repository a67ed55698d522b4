"""The command parser fed what an MO really carries (issue 9 §5): random octets in every
data_coding, through the same UDH split and text decoder the gateway uses, alone or after a
real keyword. Complements test_parse.py's arbitrary-text property."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.parse import parse, render_parse_error
from commands.parsed import Parsed, ParseError
from gateway.smpp.text import decode_text, encode_text, parse_udh
from tests.commands.test_parse import KEYWORDS


def _check(text: str, today: date) -> None:
    result = parse(text, today=today)
    assert isinstance(result, Parsed | ParseError)
    if isinstance(result, ParseError):
        assert result.key != "err_not_understood"  # the safety net never fires
        assert render_parse_error(result).startswith(f"ERR {result.code} ")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=160), st.integers(0, 255), st.sampled_from([0, 0x40]), st.dates())
def test_parse_never_raises_on_random_octets(octets: bytes, data_coding: int, esm_class: int,
                                             today: date) -> None:
    _, body = parse_udh(octets, esm_class)
    _check(decode_text(body, data_coding), today)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(KEYWORDS), st.binary(max_size=80), st.sampled_from([0, 3, 8]),
       st.dates())
def test_parse_never_raises_on_keyword_then_random_octets(keyword: str, tail: bytes,
                                                          data_coding: int, today: date) -> None:
    try:
        head = encode_text(keyword + " ", data_coding)
    except (ValueError, UnicodeError):
        head = encode_text(keyword + " ", 8)
        data_coding = 8
    _check(decode_text(head + tail, data_coding), today)
