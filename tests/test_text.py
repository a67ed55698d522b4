"""Tests for gateway.smpp.text (sans-IO SMS text layer)."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smpp.text import (
    ESM_UDHI,
    MESSAGE_STATE_STAT,
    RECEIPT_STATS,
    ConcatInfo,
    MessageTooLong,
    NotGsm7,
    Reassembler,
    choose_encoding,
    concat_from_sar,
    count_parts,
    decode_text,
    encode_text,
    format_receipt,
    gsm7_decode,
    gsm7_encode,
    gsm7_septets,
    is_gsm7,
    parse_receipt,
    parse_udh,
    split_text,
)

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXT = "^{}\\[~]|€\x0c"
GSM_CHARS = GSM_BASIC + GSM_EXT

gsm_text = st.text(alphabet=GSM_CHARS, max_size=700)
# Mix of GSM, CJK and astral (emoji) characters, to hit every unit width.
mixed_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(GSM_CHARS),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),
        st.characters(),  # surrogates are excluded by default
    ),
    max_size=600,
)


def payloads(parts: list[bytes], multipart: bool) -> list[bytes]:
    return [p[6:] for p in parts] if multipart else parts


# --- GSM 03.38 -------------------------------------------------------------------------------


def test_gsm_table_is_the_3gpp_one() -> None:
    assert len(GSM_BASIC) == 127  # 128 minus ESC
    assert gsm7_encode("@") == b"\x00"
    assert gsm7_encode("$") == b"\x02"
    assert gsm7_encode("¤") == b"\x24"
    assert gsm7_encode("_") == b"\x11"
    assert gsm7_encode("§") == b"\x5f"
    assert gsm7_encode("¿") == b"\x60"
    assert gsm7_encode("à") == b"\x7f"
    assert gsm7_encode("€") == b"\x1b\x65"
    assert gsm7_encode("\x0c") == b"\x1b\x0a"
    assert (
        gsm7_encode("^{}\\[~]|")
        == b"\x1b\x14\x1b\x28\x1b\x29\x1b\x2f\x1b\x3c\x1b\x3d\x1b\x3e\x1b\x40"
    )


def test_gsm_round_trip_all_chars() -> None:
    data = gsm7_encode(GSM_CHARS)
    assert all(b < 0x80 for b in data)
    assert gsm7_decode(data) == GSM_CHARS
    assert gsm7_septets(GSM_CHARS) == len(GSM_BASIC) + 2 * len(GSM_EXT)


def test_backtick_is_not_gsm() -> None:
    # smpplib maps '`' to 0x5F, which is '§' in GSM: a wrong character on the handset.
    assert not is_gsm7("`")
    with pytest.raises(NotGsm7) as exc:
        gsm7_encode("ab`c")
    assert isinstance(exc.value, ValueError)
    assert exc.value.start == 2
    assert choose_encoding("price `5`") == 8
    with pytest.raises(NotGsm7):
        gsm7_septets("中")


def test_choose_encoding() -> None:
    assert choose_encoding("Hello § € {x}") == 0
    assert choose_encoding("") == 0
    assert choose_encoding("订货 123456") == 8
    assert choose_encoding("ok 👍") == 8
    assert choose_encoding("ç") == 8  # only capital Ç is in the table


def test_gsm_decode_tolerant() -> None:
    assert gsm7_decode(b"\x1b\x41") == "A"  # unknown escape: base char (TS 23.038 6.2.1.1)
    assert gsm7_decode(b"a\x1b") == "a "  # trailing ESC
    assert gsm7_decode(b"\x1b\x1ba") == " a"  # ESC ESC (reserved)
    assert gsm7_decode(b"\xff") == "\ufffd"


@given(gsm_text)
def test_gsm_round_trip_property(text: str) -> None:
    assert gsm7_decode(gsm7_encode(text)) == text
    assert decode_text(encode_text(text, 0), 0) == text
    assert gsm7_septets(text) == len(gsm7_encode(text))


@given(st.binary(max_size=300))
def test_gsm_decode_never_raises(data: bytes) -> None:
    assert isinstance(gsm7_decode(data), str)


# --- data_coding -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["订货123456 1001*5", "余额 👍🏽 done", "𠀀 astral CJK", "§`"])
def test_ucs2_round_trip(text: str) -> None:
    data = encode_text(text, 8)
    assert data == text.encode("utf-16-be")
    assert decode_text(data, 8) == text


def test_decode_dc0_latin1_fallback() -> None:
    # Octets >= 0x80 cannot be unpacked septets: the SMSC sent Latin-1.
    assert decode_text("café".encode("latin-1"), 0) == "café"
    assert decode_text(b"Hi \x02", 0) == "Hi $"  # real GSM: 0x02 is '$'


def test_decode_other_codings() -> None:
    assert decode_text(b"abc\xff", 1) == "abc\ufffd"
    assert decode_text("é".encode("latin-1"), 3) == "é"
    assert decode_text(b"\x00\xff", 4) == "\x00\xff"
    assert decode_text(b"\x00\xff", 2) == "\x00\xff"
    assert decode_text(b"\xe9", 0xF5) == "é"
    assert decode_text(b"\x00a\x00", 8) == "a\ufffd"  # odd length
    assert decode_text(b"\xd8\x3d\x00a", 8) == "\ufffda"  # lone high surrogate


@given(st.binary(max_size=400), st.integers(min_value=0, max_value=255))
def test_decode_text_never_raises(data: bytes, dc: int) -> None:
    assert isinstance(decode_text(data, dc), str)


# --- splitting -------------------------------------------------------------------------------


def check_split(text: str, expected_parts: int) -> None:
    res = split_text(text, ref=42)
    assert len(res.parts) == expected_parts == count_parts(text)
    multi = expected_parts > 1
    assert res.esm_class == (ESM_UDHI if multi else 0)
    for seq, part in enumerate(res.parts, 1):
        if multi:
            assert part[:6] == bytes((5, 0, 3, 42, expected_parts, seq))
    joined = "".join(decode_text(p, res.data_coding) for p in payloads(res.parts, multi))
    assert joined == text


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 80 + "a", 2),
        ("a" * 159 + "€", 2),  # extension char would be septets 160-161
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        ("👍" * 35, 1),  # 70 code units
        ("👍" * 35 + "a", 2),
    ],
)
def test_part_counts_at_boundaries(text: str, parts: int) -> None:
    check_split(text, parts)


def test_gsm_escape_pair_never_split() -> None:
    # 152 plain septets then '€': the pair would straddle septet 153/154.
    text = "a" * 152 + "€" + "b" * 10
    res = split_text(text, ref=1)
    assert res.data_coding == 0
    first = res.parts[0][6:]
    assert len(first) == 152  # the escape pair moved whole to part 2
    assert res.parts[1][6:8] == b"\x1b\x65"
    check_split(text, 2)


def test_surrogate_pair_never_split() -> None:
    # 66 CJK (66 units) then an emoji (2 units) would exceed the 67-unit part.
    text = "中" * 66 + "😀" + "中" * 10
    res = split_text(text, ref=1)
    assert res.data_coding == 8
    assert len(res.parts[0]) == 6 + 66 * 2
    assert decode_text(res.parts[1][6:], 8).startswith("😀")
    check_split(text, 2)


def test_forced_data_coding() -> None:
    with pytest.raises(NotGsm7):
        split_text("中", ref=0, data_coding=0)
    res = split_text("hello", ref=0, data_coding=8)
    assert res.parts == ["hello".encode("utf-16-be")]
    assert count_parts("a" * 71, 8) == 2
    with pytest.raises(ValueError):
        split_text("x", ref=256)


def test_too_long() -> None:
    assert count_parts("a" * 153 * 255) == 255
    with pytest.raises(MessageTooLong):
        split_text("a" * (153 * 255 + 1), ref=0)
    with pytest.raises(MessageTooLong):
        count_parts("中" * (67 * 255 + 1))


@settings(max_examples=300)
@given(mixed_text, st.integers(min_value=0, max_value=255))
def test_split_property(text: str, ref: int) -> None:
    res = split_text(text, ref=ref)
    assert len(res.parts) == count_parts(text)
    multi = len(res.parts) > 1
    for part in res.parts:
        body = part[6:] if multi else part
        if res.data_coding == 0:
            # unpacked septets: one octet each; limit is in septets
            assert len(body) <= (153 if multi else 160)
        else:
            assert len(part) <= 140
            # never ends inside a surrogate pair
            assert decode_text(body, 8).encode("utf-16-be") == body
        if multi:
            info, payload = parse_udh(part, res.esm_class)
            assert info is not None and info.ref == ref and info.total == len(res.parts)
            assert payload == body
    joined = "".join(decode_text(p, res.data_coding) for p in payloads(res.parts, multi))
    assert joined == text


@given(gsm_text)
def test_split_gsm_property(text: str) -> None:
    res = split_text(text, ref=9)
    assert res.data_coding == 0
    multi = len(res.parts) > 1
    for body in payloads(res.parts, multi):
        # no part ends with a dangling ESC
        assert not body.endswith(b"\x1b") or body.endswith(b"\x1b\x1b")
    assert "".join(gsm7_decode(b) for b in payloads(res.parts, multi)) == text


# --- UDH -------------------------------------------------------------------------------------


def test_parse_udh_8bit_and_16bit() -> None:
    assert parse_udh(b"\x05\x00\x03\x07\x03\x02hi", 0x40) == (ConcatInfo(7, 3, 2), b"hi")
    assert parse_udh(b"\x06\x08\x04\x12\x34\x02\x01hi", 0x40) == (
        ConcatInfo(0x1234, 2, 1),
        b"hi",
    )
    # other IEs skipped (here a port-addressing IE 0x05 before the concat IE)
    sm = b"\x0b\x05\x04\x0b\x84\x23\xf0\x00\x03\x01\x02\x01xy"
    assert parse_udh(sm, 0x43) == (ConcatInfo(1, 2, 1), b"xy")
    # UDH without concat: payload still stripped
    assert parse_udh(b"\x04\x05\x02\x00\x00ab", 0x40) == (None, b"ab")


def test_parse_udh_without_udhi_or_malformed() -> None:
    sm = b"\x05\x00\x03\x07\x03\x02hi"
    assert parse_udh(sm, 0x00) == (None, sm)
    assert parse_udh(b"", 0x40) == (None, b"")
    bad = [
        b"\x09\x00\x03\x01\x02\x01",  # UDHL past the end
        b"\x05\x00\x05\x01\x02\x01abc",  # IE overruns UDH
        b"\x01\x00abc",  # IE header cut
    ]
    for sm in bad:
        assert parse_udh(sm, 0x40) == (None, sm)
    # invalid concat values -> IE ignored (TS 23.040 9.2.3.24.1)
    assert parse_udh(b"\x05\x00\x03\x01\x02\x03x", 0x40) == (None, b"x")
    assert parse_udh(b"\x05\x00\x03\x01\x00\x00x", 0x40) == (None, b"x")


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=255))
def test_parse_udh_never_raises(data: bytes, esm: int) -> None:
    info, payload = parse_udh(data, esm)
    assert info is None or 1 <= info.seq <= info.total
    assert data.endswith(payload)


def test_concat_from_sar() -> None:
    assert concat_from_sar(513, 3, 1) == ConcatInfo(513, 3, 1)
    assert concat_from_sar(None, 3, 1) is None
    assert concat_from_sar(1, 2, 3) is None
    assert concat_from_sar(1, 0, 0) is None


# --- reassembly ------------------------------------------------------------------------------


def test_reassembly_out_of_order_and_duplicates() -> None:
    r = Reassembler(timeout=60)
    key = ("8613800000000", "10086")
    assert r.add(key, ConcatInfo(5, 3, 3), "c", now=0) is None
    assert r.add(key, ConcatInfo(5, 3, 1), "a", now=1) is None
    assert r.add(key, ConcatInfo(5, 3, 1), "a", now=2) is None  # duplicate ignored
    assert r.pending == 1
    assert r.add(key, ConcatInfo(5, 3, 2), "b", now=3) == "abc"
    assert r.pending == 0
    # redelivery of a part after completion does not open a new group
    assert r.add(key, ConcatInfo(5, 3, 2), "b", now=4) is None
    assert r.pending == 0
    assert r.expire(now=1000) == []


def test_reassembly_groups_are_separate() -> None:
    r = Reassembler()
    a, b = ("1", "x"), ("2", "x")
    assert r.add(a, ConcatInfo(1, 2, 1), "A1", now=0) is None
    assert r.add(b, ConcatInfo(1, 2, 2), "B2", now=0) is None
    assert r.add(a, ConcatInfo(2, 2, 2), "other ref", now=0) is None
    assert r.pending == 3
    assert r.add(b, ConcatInfo(1, 2, 1), "B1", now=0) == "B1B2"
    assert r.add(a, ConcatInfo(5, 1, 1), "single", now=0) == "single"


def test_reassembly_same_ref_new_message_after_completion() -> None:
    r = Reassembler()
    k = ("1", "2")
    assert r.add(k, ConcatInfo(1, 2, 1), "a", now=0) is None
    assert r.add(k, ConcatInfo(1, 2, 2), "b", now=0) == "ab"
    # same ref reused with different text: a new message, not a redelivery
    assert r.add(k, ConcatInfo(1, 2, 1), "c", now=1) is None
    assert r.add(k, ConcatInfo(1, 2, 2), "d", now=1) == "cd"


def test_reassembly_timeout() -> None:
    r = Reassembler(timeout=60)
    k = ("1", "2")
    r.add(k, ConcatInfo(9, 4, 1), "one ", now=100)
    r.add(k, ConcatInfo(9, 4, 3), "three", now=130)
    assert r.expire(now=159) == []
    expired = r.expire(now=160)
    assert len(expired) == 1
    key, parts, missing = expired[0]
    assert key == k
    assert parts == {1: "one ", 3: "three"}
    assert missing == [2, 4]
    assert expired[0].partial_text == "one three"
    assert r.pending == 0
    assert r.expire(now=1000) == []


def test_reassembly_max_groups_evicts_to_expire() -> None:
    r = Reassembler(timeout=60, max_groups=2)
    for i in range(3):
        r.add(("k", i), ConcatInfo(i, 2, 1), str(i), now=i)
    assert r.pending == 2
    expired = r.expire(now=3)
    assert [e.key for e in expired] == [("k", 0)]


@given(st.lists(st.text(max_size=5), min_size=1, max_size=10), st.randoms())
def test_reassembly_any_order(chunks: list[str], rnd: random.Random) -> None:
    r = Reassembler()
    total = len(chunks)
    order = list(range(1, total + 1))
    rnd.shuffle(order)
    results = [r.add("k", ConcatInfo(3, total, s), chunks[s - 1], now=0) for s in order]
    assert results[-1] == "".join(chunks)
    assert all(x is None for x in results[:-1])
    assert r.pending == 0


# --- receipts --------------------------------------------------------------------------------


def test_format_receipt() -> None:
    s = format_receipt(
        message_id="0123ABC",
        submitted=1,
        delivered=1,
        submit_date=datetime(2026, 11, 24, 12, 0),
        done_date=datetime(2026, 11, 24, 12, 1, 30),
        stat="DELIVRD",
        err=0,
        text="hello there, this is longer than twenty",
    )
    assert s == (
        "id:0123ABC sub:001 dlvrd:001 submit date:2611241200 done date:2611241201 "
        "stat:DELIVRD err:000 text:hello there, this is"
    )
    with pytest.raises(ValueError):
        format_receipt(
            message_id="1",
            submitted=1,
            delivered=0,
            submit_date=datetime(2026, 1, 1),
            done_date=datetime(2026, 1, 1),
            stat="BOGUS",
            err=0,
            text="",
        )


@given(
    st.from_regex(r"[0-9A-Za-z\-]{1,40}", fullmatch=True),
    st.integers(0, 999),
    st.integers(0, 999),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    st.sampled_from(sorted(RECEIPT_STATS)),
    st.integers(0, 999),
    st.text(max_size=40),
)
def test_receipt_round_trip(
    mid: str, sub: int, dlvrd: int, when: datetime, stat: str, err: int, text: str
) -> None:
    s = format_receipt(
        message_id=mid,
        submitted=sub,
        delivered=dlvrd,
        submit_date=when,
        done_date=when,
        stat=stat,
        err=err,
        text=text,
    )
    r = parse_receipt(s)
    assert r is not None
    assert r.id == mid
    assert (r.sub, r.dlvrd, r.stat, r.err) == (sub, dlvrd, stat, f"{err:03d}")
    assert r.submit_date == r.done_date == when.replace(second=0, microsecond=0)
    assert r.text == text[:20].strip()


def test_parse_receipt_real_world() -> None:
    r = parse_receipt(
        "id:0123ABC sub:001 dlvrd:001 submit date:2611241200 done date:2611241201 "
        "stat:DELIVRD err:000 text:hello"
    )
    assert r is not None
    assert r.id == "0123ABC"
    assert (r.sub, r.dlvrd, r.stat, r.err, r.text) == (1, 1, "DELIVRD", "000", "hello")
    assert r.submit_date == datetime(2026, 11, 24, 12, 0)
    assert r.done_date == datetime(2026, 11, 24, 12, 1)

    # lower/upper case keys and values, extra spaces, seconds in dates, no text
    r = parse_receipt(
        "ID: 000123   Sub:1 DLVRD:0  Submit Date:261124120000 done_date:261124120105 "
        "Stat:undeliv  Err:0B1"
    )
    assert r is not None
    assert r.id == "000123"
    assert (r.sub, r.dlvrd, r.stat, r.err, r.text) == (1, 0, "UNDELIV", "0B1", None)
    assert r.submit_date == datetime(2026, 11, 24, 12, 0, 0)
    assert r.done_date == datetime(2026, 11, 24, 12, 1, 5)

    # UUID id, missing fields, capitalised Text: with colon content
    r = parse_receipt("id:3f2504e0-4f89-11d3-9a0c-0305e82c3301 stat:EXPIRED Text:stat:x id:y")
    assert r is not None
    assert r.id == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert (r.stat, r.sub, r.err, r.submit_date, r.text) == (
        "EXPIRED",
        None,
        None,
        None,
        "stat:x id:y",
    )

    # spelled-out stat, bad date
    r = parse_receipt("id:42 submit date:99999999 stat:DELIVERED err:000")
    assert r is not None
    assert (r.stat, r.submit_date) == ("DELIVRD", None)


@pytest.mark.parametrize(
    "text", ["", "hello", "ORD 123456 1001*5", "id: stat:DELIVRD", "id:5 sub:001", "valid:1 stat:x"]
)
def test_parse_receipt_not_a_receipt(text: str) -> None:
    assert parse_receipt(text) is None


@given(st.text(max_size=300))
def test_parse_receipt_never_raises(text: str) -> None:
    parse_receipt(text)


def test_message_state_mapping() -> None:
    assert MESSAGE_STATE_STAT[2] == "DELIVRD"
    assert MESSAGE_STATE_STAT[5] == "UNDELIV"
    assert set(MESSAGE_STATE_STAT.values()) == RECEIPT_STATS
