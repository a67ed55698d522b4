"""The command parser (commands/parse.py) against protocol.md, plus HELP texts."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.help import fits_one_sms, help_text
from commands.normalize import normalize
from commands.parse import parse, render_parse_error
from commands.parsed import Item, Parsed, ParseError
from commands.registry import REGISTRY, CommandSpec, Registry
from commands.templates import LANGS, table
from common.fields import MAX_BACKDATE_ENV, max_backdate_days
from gateway.smpp.text import gsm7_septets, is_gsm7

TODAY = date(2024, 1, 15)


def ok(text: str, today: date = TODAY) -> Parsed:
    result = parse(text, today=today)
    assert isinstance(result, Parsed), (text, result)
    return result


def err(text: str, today: date = TODAY) -> ParseError:
    result = parse(text, today=today)
    assert isinstance(result, ParseError), (text, result)
    render_parse_error(result)  # every error renders
    return result


def items(*pairs: tuple[str, int]) -> tuple[Item, ...]:
    return tuple(Item(code, qty, i) for i, (code, qty) in enumerate(pairs, 1))


# ---------------------------------------------------------------------------------------------
# Every command, every alias
# ---------------------------------------------------------------------------------------------

ALIASES = [(word, spec.code) for spec in REGISTRY.specs.values()
           for word in (spec.code, *spec.aliases)]


def test_registry_has_protocol_table() -> None:
    expected = {
        "HELP": {"帮助", "BZ", "?"}, "REG": {"注册", "ZC"}, "PIN": {"改密", "GM"},
        "ORD": {"订货", "DH"}, "MOD": {"改单", "GD"}, "CAN": {"撤单", "CD"},
        "RPT": {"重复", "CF"}, "OQ": {"查单", "CHD"}, "SAL": {"销量", "XL"},
        "STK": {"库存", "KC"}, "SN": {"串号", "CH"}, "BAL": {"余额", "YE"},
        "Q": {"查询", "CX"}, "SUB": {"订阅", "DY"}, "UNSUB": {"退订", "TD", "STOP"},
        "CHG": {"改号", "GH"}, "CFM": {"确认", "QR"},
    }
    assert {code: set(spec.aliases) for code, spec in REGISTRY.specs.items()} == expected
    for spec in REGISTRY.specs.values():
        assert spec.syntax and spec.syntax_zh and spec.summary and spec.summary_zh
        assert spec.example and spec.example_zh


@pytest.mark.parametrize("spec", list(REGISTRY.specs.values()), ids=lambda s: s.code)
def test_every_example_parses(spec: CommandSpec) -> None:
    en, zh = ok(spec.example), ok(spec.example_zh)
    assert en.command == zh.command == spec.code
    assert (en.lang, zh.lang) == ("en", "zh")
    assert en.args == zh.args


@pytest.mark.parametrize(("word", "code"), ALIASES)
def test_every_alias_any_case(word: str, code: str) -> None:
    for w in {word, word.lower(), word.title()}:
        assert REGISTRY.match(f"{w} 1").spec.code == code  # type: ignore[union-attr]
        assert REGISTRY.lookup(w).code == code  # type: ignore[union-attr]


def test_keyword_language() -> None:
    assert ok("ORD 123456 1001*1").lang == "en"
    assert ok("订货123456 1001*1").lang == "zh"
    assert ok("DH 123456 1001*1").lang == "zh"  # pinyin initials are Chinese users' keywords
    assert ok("STOP").lang == "en"
    assert ok("TD").lang == "zh"
    assert ok("?").lang == "en"


SUCCESS = [
    ("HELP", "HELP", {"command": None}),
    ("help ord", "HELP", {"command": "ORD"}),
    ("HELP 订货", "HELP", {"command": "ORD"}),
    ("帮助订货", "HELP", {"command": "ORD"}),
    ("BZ DH", "HELP", {"command": "ORD"}),
    ("?", "HELP", {"command": None}),
    ("?chd", "HELP", {"command": "OQ"}),
    ("HELP?", "HELP", {"command": None}),
    ("HELP ORD please", "HELP", {"command": "ORD"}),
    ("REG r1001 123456", "REG", {"account": "R1001", "pin": "123456"}),
    ("ZC R-7 000001", "REG", {"account": "R-7", "pin": "000001"}),
    ("PIN 123456 654321", "PIN", {"old": "123456", "new": "654321"}),
    ("GM 123456 654321", "PIN", {"old": "123456", "new": "654321"}),
    ("ORD 123456 1001*5", "ORD", {"pin": "123456", "items": items(("1001", 5))}),
    ("ORD123456 1001*5", "ORD", {"pin": "123456", "items": items(("1001", 5))}),
    ("订货 123456 1001*5", "ORD", {"pin": "123456", "items": items(("1001", 5))}),
    ("dh123456 1001*5", "ORD", {"pin": "123456", "items": items(("1001", 5))}),
    ("MOD 123456 1024 1001*0 1002*3", "MOD",
     {"pin": "123456", "order": "1024", "items": items(("1001", 0), ("1002", 3))}),
    ("改单123456 1024 1001 0", "MOD",
     {"pin": "123456", "order": "1024", "items": items(("1001", 0))}),
    ("CAN 123456 1024", "CAN", {"pin": "123456", "order": "1024"}),
    ("CD 123456 77", "CAN", {"pin": "123456", "order": "77"}),
    ("RPT 123456", "RPT", {"pin": "123456"}),
    ("CF123456", "RPT", {"pin": "123456"}),
    ("OQ", "OQ", {"order": None}),
    ("查单", "OQ", {"order": None}),
    ("OQ 1024", "OQ", {"order": "1024"}),
    ("CHD1024", "OQ", {"order": "1024"}),
    ("SAL 1001*5", "SAL", {"date": TODAY, "items": items(("1001", 5))}),
    ("XL 20240110 1001*5", "SAL", {"date": date(2024, 1, 10), "items": items(("1001", 5))}),
    ("STK 0110 1001*5", "STK", {"date": date(2024, 1, 10), "items": items(("1001", 5))}),
    ("库存1001*5 1002*7", "STK", {"date": TODAY, "items": items(("1001", 5), ("1002", 7))}),
    ("SN 356938035643809", "SN", {"serials": ("356938035643809",)}),
    ("CH abc123 356938035643809", "SN", {"serials": ("ABC123", "356938035643809")}),
    ("串号356938035643809、ABCDEF", "SN", {"serials": ("356938035643809", "ABCDEF")}),
    ("BAL", "BAL", {}),
    ("ye", "BAL", {}),
    ("Q SALES", "Q", {"what": "SALES", "period": None, "code": None}),
    ("Q SALES day", "Q", {"what": "SALES", "period": "day", "code": None}),
    ("q sales MONTH", "Q", {"what": "SALES", "period": "month", "code": None}),
    ("查询销量 日", "Q", {"what": "SALES", "period": "day", "code": None}),
    ("查询 销量 今日", "Q", {"what": "SALES", "period": "day", "code": None}),
    ("CX SALES 月", "Q", {"what": "SALES", "period": "month", "code": None}),
    ("查询销量本月", "Q", {"what": "SALES", "period": "month", "code": None}),
    ("Q STOCK 1001", "Q", {"what": "STOCK", "period": None, "code": "1001"}),
    ("查询库存1001", "Q", {"what": "STOCK", "period": None, "code": "1001"}),
    ("Q ROUTE", "Q", {"what": "ROUTE", "period": None, "code": None}),
    ("SUB SALES", "SUB", {"topic": "SALES", "window": None}),
    ("SUB sales 8-20", "SUB", {"topic": "SALES", "window": (8, 20)}),
    ("SUB SALES 22-6", "SUB", {"topic": "SALES", "window": (22, 6)}),
    ("SUB SALES 0-24", "SUB", {"topic": "SALES", "window": (0, 24)}),
    ("订阅日报8-20", "SUB", {"topic": "日报", "window": (8, 20)}),
    ("DY SALES 08~20", "SUB", {"topic": "SALES", "window": (8, 20)}),
    ("UNSUB SALES", "UNSUB", {"topic": "SALES"}),
    ("UNSUB ALL", "UNSUB", {"topic": None}),
    ("unsub all", "UNSUB", {"topic": None}),
    ("UNSUB", "UNSUB", {"topic": None}),
    ("STOP", "UNSUB", {"topic": None}),
    ("stop", "UNSUB", {"topic": None}),
    ("STOP.", "UNSUB", {"topic": None}),
    ("TD", "UNSUB", {"topic": None}),
    ("td", "UNSUB", {"topic": None}),
    ("退订", "UNSUB", {"topic": None}),
    ("退订。", "UNSUB", {"topic": None}),
    ("退订全部", "UNSUB", {"topic": None}),
    # Every written form of a phone is its one canonical form (common.phones).
    ("CHG 123456 13912345678", "CHG", {"pin": "123456", "phone": "8613912345678"}),
    ("CHG 123456 +86 139-1234-5678", "CHG", {"pin": "123456", "phone": "8613912345678"}),
    ("CHG 123456 +86 136-0000-0099", "CHG", {"pin": "123456", "phone": "8613600000099"}),
    ("CHG 123456 008613912345678", "CHG", {"pin": "123456", "phone": "8613912345678"}),
    ("改号123456 +8613912345678", "CHG", {"pin": "123456", "phone": "8613912345678"}),
    ("CHG 123456 +44 7911 123456", "CHG", {"pin": "123456", "phone": "447911123456"}),
    ("CFM 4821", "CFM", {"code": "4821"}),
    ("qr ab12cd", "CFM", {"code": "AB12CD"}),
]


@pytest.mark.parametrize(("text", "command", "args"), SUCCESS)
def test_success(text: str, command: str, args: dict) -> None:
    result = ok(text)
    assert (result.command, result.args) == (command, args)


def test_keyword_as_written() -> None:
    assert ok("ord 123456 1001*1").keyword == "ord"
    assert ok("订货123456 1001*1").keyword == "订货"


# ---------------------------------------------------------------------------------------------
# Keyword matching
# ---------------------------------------------------------------------------------------------


def test_longest_match_chd_beats_ch() -> None:
    assert ok("CHD").command == "OQ"
    assert ok("CHD 1024").command == "OQ"
    assert ok("CH 356938035643809").command == "SN"
    assert ok("CHG 123456 13912345678").command == "CHG"


def test_longest_first_with_overlapping_chinese_keywords() -> None:
    reg = Registry([CommandSpec("A", ("订",), "A"), CommandSpec("B", ("订货",), "B")])
    assert reg.match("订货1").spec.code == "B"  # type: ignore[union-attr]
    assert reg.match("订1").spec.code == "A"  # type: ignore[union-attr]


def test_chinese_keyword_needs_no_separator() -> None:
    assert ok("订货123456 1001*5").args == ok("订货 123456 1001*5").args


def test_latin_keyword_needs_a_boundary() -> None:
    e = err("HELPME")
    assert (e.code, e.key, e.params["word"]) == ("E01", "err_unknown_command", "HELPME")
    assert err("ORDX 123456 1001*5").code == "E01"
    assert err("QSALES").code == "E01"


def test_duplicate_keyword_rejected() -> None:
    with pytest.raises(ValueError):
        Registry([CommandSpec("A", ("X",), "A"), CommandSpec("B", ("x",), "B")])


# ---------------------------------------------------------------------------------------------
# Normalisation and item syntaxes
# ---------------------------------------------------------------------------------------------


def test_normalize() -> None:
    assert normalize("  ＯＲＤ　１２３４５６，，１００１＊５；1002#3、1003  ") == \
        "ORD 123456 1001*5 1002 3 1003"


@pytest.mark.parametrize("text", [
    "ORD 123456 1001*5 1002*3",
    "ORD 123456 1001x5 1002X3",
    "ORD 123456 1001 x 5 1002 X 3",
    "ORD 123456 1001 * 5 1002* 3",
    "ORD 123456 1001×5 1002×3",
    "ORD 123456 1001-5 1002-3",
    "ORD 123456 1001 5 1002 3",
    "ORD 123456 1001 5 1002*3",
    "ORD,123456,1001*5,1002*3",
    "ORD#123456#1001*5#1002*3",
    "ORD;123456;1001*5;1002*3",
    "ORD、123456、1001*5、1002*3",
    "ORD，123456，1001＊5，1002＊3",
    "ＯＲＤ　１２３４５６　１００１＊５　１００２＊３",
    "  ord   123456   1001*5    1002*3  ",
    "订货123456 1001*5 1002*3",
    "订货，123456，1001×5，1002×3",
])
def test_item_syntaxes_and_separators(text: str) -> None:
    result = ok(text)
    assert result.args == {"pin": "123456", "items": items(("1001", 5), ("1002", 3))}


def test_leading_zero_quantity() -> None:
    assert ok("ORD 123456 1001*0005").args["items"] == items(("1001", 5))


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "today", "expected"), [
    ("SAL 1001*1", TODAY, TODAY),
    ("SAL 0110 1001*1", TODAY, date(2024, 1, 10)),
    ("SAL 20231231 1001*1", TODAY, date(2023, 12, 31)),
    ("SAL 1231 1001*1", date(2024, 1, 2), date(2023, 12, 31)),  # most recent: last year
    ("SAL 1201 1001*1", date(2026, 12, 1), date(2026, 12, 1)),  # today
    ("SAL 0115 1001*1", date(2026, 2, 1), date(2026, 1, 15)),
    ("SAL 20231216 1001*1", TODAY, date(2023, 12, 16)),  # 30 days back
    ("SAL 0229 1001*1", date(2024, 3, 1), date(2024, 2, 29)),
    ("SAL 0115 1001 5", TODAY, TODAY),  # odd run of numbers: dated
    ("SAL 0115 1001 5 1002 3", TODAY, TODAY),
    ("STK 20240101 1001 5", TODAY, date(2024, 1, 1)),
])
def test_dates(text: str, today: date, expected: date) -> None:
    assert ok(text, today).args["date"] == expected


def test_pair_run_without_date() -> None:
    result = ok("SAL 0115 1001")  # even run: item 0115 × 1001
    assert result.args == {"date": TODAY, "items": items(("0115", 1001))}


@pytest.mark.parametrize(("text", "key", "value"), [
    ("SAL 0230 1001*1", "err_date_invalid", "0230"),
    ("SAL 1301 1001*1", "err_date_invalid", "1301"),
    ("SAL 20230229 1001*1", "err_date_invalid", "20230229"),
    ("SAL 00000101 1001*1", "err_date_invalid", "00000101"),
    ("SAL 240115 1001*1", "err_date", "240115"),
])
def test_invalid_dates(text: str, key: str, value: str) -> None:
    e = err(text)
    assert (e.code, e.command, e.key, e.params["value"]) == ("E02", "SAL", key, value)
    assert value in render_parse_error(e)


@pytest.mark.parametrize(("text", "today", "key", "reply"), [
    # MMDD is never next year's: on 2026-12-01 `0115` is 2026-01-15 (then too old), and
    # a date after today is refused, never stored for a day nobody counts.
    ("SAL 0115 1001*1", date(2026, 12, 1), "err_date_too_old",
     "ERR E02 date 2026-01-15 is more than 31 days ago, too late to report. HELP SAL for format"),
    ("SAL 0102 1001*1", date(2023, 12, 31), "err_date_too_old", "2023-01-02"),
    ("SAL 20240115 1001*1", date(2026, 12, 1), "err_date_too_old",
     "date 2024-01-15 is more than 31 days ago"),
    ("SAL 20261202 1001*1", date(2026, 12, 1), "err_date_future",
     "ERR E02 date 2026-12-02 is in the future. HELP SAL for format"),
    ("STK 20270115 1001*1", date(2026, 12, 1), "err_date_future", "2027-01-15"),
    ("销量20261202 1001*1", date(2026, 12, 1), "err_date_future", "日期2026-12-02尚未到来"),
    ("销量20240115 1001*1", date(2026, 12, 1), "err_date_too_old", "已超过31天"),
])
def test_future_and_too_old_dates_are_refused(text: str, today: date, key: str,
                                               reply: str) -> None:
    e = err(text, today)
    assert (e.code, e.key) == ("E02", key)
    assert reply in render_parse_error(e)


def test_backdate_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_BACKDATE_ENV, "3")
    max_backdate_days.cache_clear()
    try:
        assert ok("SAL 0112 1001*1").args["date"] == date(2024, 1, 12)
        e = err("SAL 0111 1001*1")
        assert e.key == "err_date_too_old" and e.params["days"] == 3
    finally:
        monkeypatch.undo()
        max_backdate_days.cache_clear()


# ---------------------------------------------------------------------------------------------
# Malformed
# ---------------------------------------------------------------------------------------------

MALFORMED = [
    # text, code, key, params subset
    ("", "E01", "err_empty", {}),
    ("  ，， ", "E01", "err_empty", {}),
    ("HELLO", "E01", "err_unknown_command", {"word": "HELLO"}),
    ("你好 订货", "E01", "err_unknown_command", {"word": "你好"}),
    ("HELP XYZ", "E01", "err_unknown_help", {"word": "XYZ"}),
    ("REG", "E02", "err_missing", {"arg": "account"}),
    ("REG R1001", "E02", "err_missing", {"arg": "pin"}),
    ("REG R1001 12345", "E02", "err_pin", {"value": "12345"}),
    ("REG R1001 123456 7", "E02", "err_extra", {"value": "7"}),
    ("REG R/1 123456", "E02", "err_account", {"value": "R/1"}),
    ("PIN 123456", "E02", "err_missing", {"arg": "new_pin"}),
    ("PIN 12345a 123456", "E02", "err_pin", {"arg": "old_pin", "value": "12345a"}),
    ("ORD", "E02", "err_missing", {"arg": "pin"}),
    ("ORD 1001*5", "E02", "err_missing", {"arg": "pin"}),
    ("ORD 12345 1001*5", "E02", "err_pin", {"value": "12345"}),
    ("ORD 1234567 1001*5", "E02", "err_pin", {"value": "1234567"}),
    ("ORD 123456", "E02", "err_no_items", {}),
    ("ORD 123456 1001*5 1002*3 10x1", "E02", "err_item_code", {"pos": 3, "value": "10x1"}),
    ("ORD 123456 1001*5 abc", "E02", "err_item", {"pos": 2, "value": "abc"}),
    ("ORD 123456 1001*5 1002*2.5", "E02", "err_item", {"pos": 2, "value": "1002*2.5"}),
    ("ORD 123456 1001*-5", "E02", "err_item", {"pos": 1, "value": "1001*-5"}),
    ("ORD 123456 1001*5 1002", "E02", "err_item_no_qty", {"pos": 2, "value": "1002"}),
    ("ORD 123456 10010 5", "E02", "err_item_code", {"pos": 1, "value": "10010 5"}),
    ("ORD 123456 1001*0", "E02", "err_qty_zero", {"pos": 1, "value": "1001*0"}),
    ("ORD 123456 1001*5 1002*3 1001*2", "E02", "err_item_dup",
     {"pos": 3, "product": "1001", "first": 1}),
    ("ORD 123456 1001*10000", "E07", "err_qty_big", {"pos": 1, "value": "1001*10000"}),
    ("ORD 123456 1001*5 1002*" + "9" * 5000, "E07", "err_qty_big", {"pos": 2}),
    ("MOD 123456", "E02", "err_missing", {"arg": "order"}),
    ("MOD 123456 1001*5", "E02", "err_missing", {"arg": "order"}),
    ("MOD 123456 A12 1001*5", "E02", "err_order", {"value": "A12"}),
    ("MOD 123456 1024", "E02", "err_no_items", {}),
    ("CAN 123456", "E02", "err_missing", {"arg": "order"}),
    ("CAN 123456 12 13", "E02", "err_extra", {"value": "13"}),
    ("RPT", "E02", "err_missing", {"arg": "pin"}),
    ("OQ 12a", "E02", "err_order", {"value": "12A"}),
    ("SAL", "E02", "err_no_items", {}),
    ("SAL 0115", "E02", "err_no_items", {}),
    ("STK 1001*0", "E02", "err_qty_zero", {"pos": 1}),
    ("STK 1001*100000", "E07", "err_qty_big", {"pos": 1, "max": 99999}),
    ("SN", "E02", "err_missing", {"arg": "serial"}),
    ("SN 356938035643809 12345", "E02", "err_serial", {"pos": 2, "value": "12345"}),
    ("SN ABC-123456", "E02", "err_serial", {"pos": 1}),
    ("BAL now", "E02", "err_extra", {"value": "NOW"}),
    ("Q", "E02", "err_missing", {"arg": "what"}),
    ("Q FOO", "E02", "err_q_what", {"value": "FOO"}),
    ("Q SALES week", "E02", "err_q_period", {"value": "WEEK"}),
    ("Q SALES day 2", "E02", "err_extra", {"value": "2"}),
    ("Q STOCK", "E02", "err_missing", {"arg": "product"}),
    ("Q STOCK 10011", "E02", "err_code", {"value": "10011"}),
    ("Q ROUTE 5", "E02", "err_extra", {"value": "5"}),
    ("SUB", "E02", "err_missing", {"arg": "topic"}),
    ("SUB SALES 8-8", "E02", "err_window", {"value": "8-8"}),
    ("SUB SALES 8-25", "E02", "err_window", {"value": "8-25"}),
    ("SUB SALES 8", "E02", "err_window", {"value": "8"}),
    ("SUB SALES 8-20 x", "E02", "err_extra", {"value": "X"}),
    ("SUB SA/LES", "E02", "err_topic", {"value": "SA/LES"}),
    ("UNSUB SALES NEWS", "E02", "err_extra", {"value": "NEWS"}),
    ("CHG 123456", "E02", "err_missing", {"arg": "phone"}),
    ("CHG 123456 1391234567x", "E02", "err_phone", {"value": "1391234567X"}),
    ("CHG 123456 12", "E02", "err_phone", {"value": "12"}),  # too short for a phone
    ("CHG 123456 10086", "E02", "err_phone", {"value": "10086"}),  # a local service number
    ("CFM", "E02", "err_missing", {"arg": "confirm_code"}),
    ("CFM 12", "E02", "err_cfm_code", {"value": "12"}),
]


@pytest.mark.parametrize(("text", "code", "key", "params"), MALFORMED)
def test_malformed(text: str, code: str, key: str, params: dict) -> None:
    e = err(text)
    assert (e.code, e.key) == (code, key), e
    for name, value in params.items():
        got = e.params[name]
        if isinstance(got, str):
            got, value = got.upper(), value.upper()
        assert got == value, (name, e.params)


def test_command_recognised_in_error() -> None:
    assert err("订货123456 1001*5 1002").command == "ORD"
    assert err("订货123456 1001*5 1002").lang == "zh"
    assert err("HELLO").command is None


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def test_render_en() -> None:
    assert render_parse_error(err("ORD 123456 1001*5 1002*3 10x1")) == \
        "ERR E02 item 3 '10x1': product code must be 4 digits. HELP ORD for format"
    assert render_parse_error(err("ORD 12345 1001*5")) == \
        "ERR E02 PIN '12345' must be 6 digits. HELP ORD for format"
    assert render_parse_error(err("MOD 123456")) == \
        "ERR E02 missing order number. HELP MOD for format"
    assert render_parse_error(err("ORD 123456 1001*20000")) == \
        "ERR E07 item 1 '1001*20000': quantity over 9999. HELP ORD for format"
    assert render_parse_error(err("XYZ 1")) == \
        "ERR E01 unknown command 'XYZ'. Send HELP for commands"


def test_render_zh() -> None:
    assert render_parse_error(err("订货123456 1001*5 1002")) == \
        "ERR E02 第2项“1002”缺少数量。发送 帮助 订货 查看格式"
    assert render_parse_error(err("DH 12345")) == \
        "ERR E02 密码“12345”应为6位数字。发送 帮助 订货 查看格式"
    assert render_parse_error(err("你好")) == "ERR E01 无法识别的指令“你好”。发送 帮助 查看指令"


def test_render_clips_long_values() -> None:
    text = render_parse_error(err("X" * 500))
    assert len(text) < 100 and "XXX..." in text


def test_templates_same_keys_in_both_languages() -> None:
    assert set(table("en")) == set(table("zh"))


@pytest.mark.parametrize("text", [t for t, *_ in MALFORMED])
@pytest.mark.parametrize("lang", LANGS)
def test_every_error_renders_in_both_languages(text: str, lang: str) -> None:
    e = err(text)
    reply = render_parse_error(ParseError(e.code, lang, e.command, e.key, e.params))
    assert reply.startswith(f"ERR {e.code} ")
    assert ("HELP" in reply) if lang == "en" else ("帮助" in reply)


# ---------------------------------------------------------------------------------------------
# HELP texts
# ---------------------------------------------------------------------------------------------


def _one_sms(text: str) -> bool:
    return gsm7_septets(text) <= 160 if is_gsm7(text) else len(text) <= 70


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("command", [None, *REGISTRY.specs])
def test_help_fits_one_sms(lang: str, command: str | None) -> None:
    text = help_text(lang, command)
    assert _one_sms(text), (len(text), text)
    assert fits_one_sms(text)
    if command is not None:
        spec = REGISTRY.specs[command]
        assert (spec.example if lang == "en" else spec.example_zh) in text


def test_help_list_names_every_command() -> None:
    en, zh = help_text("en", None), help_text("zh", None)
    for spec in REGISTRY.specs.values():
        assert spec.code in en
        assert spec.name_zh in zh


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

KEYWORDS = [w for w, _ in ALIASES]
PIECES = st.sampled_from([
    "123456", "1001*5", "1002x3", "1003 X 2", "1004", "5", "0115", "20240230", "SALES",
    "month", "日", "本月", "8-20", "ALL", "+86", "13912345678", "356938035643809", "×", "*",
    "-", "x", "0", "99999999", "全部", "?", "。", "abc", "",
])
FUZZ = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(FUZZ, st.builds(lambda k, rest: k + rest, st.sampled_from(KEYWORDS), FUZZ)),
       st.dates())
def test_never_raises_on_arbitrary_text(text: str, today: date) -> None:
    result = parse(text, today=today)
    assert isinstance(result, Parsed | ParseError)
    if isinstance(result, ParseError):
        assert result.key != "err_not_understood"  # the safety net never fires
        assert render_parse_error(result).startswith(f"ERR {result.code} ")


SEPARATORS = [" ", ",", "，", "、", ";", "#", "  ", " , ", "\u3000", "＃", "；"]


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _key(result: Parsed | ParseError) -> tuple:
    if isinstance(result, Parsed):
        return ("ok", result.command, result.lang, tuple(sorted(result.args.items(), key=str)))
    return ("err", result.code, result.command, result.lang, result.key)


@settings(max_examples=400)
@given(st.sampled_from(KEYWORDS), st.lists(PIECES, max_size=8),
       st.lists(st.sampled_from(SEPARATORS), min_size=10, max_size=10),
       st.sampled_from([str, str.upper, str.lower, _fullwidth]))
def test_normalised_equivalents_parse_identically(keyword: str, pieces: list[str],
                                                  seps: list[str], variant) -> None:
    plain = " ".join([keyword, *pieces])
    words = [keyword, *pieces]
    mangled = "  " + "".join(w + seps[i % len(seps)] for i, w in enumerate(words)) + " "
    assert _key(parse(variant(mangled), today=TODAY)) == _key(parse(plain, today=TODAY)), \
        (plain, variant(mangled))


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 9999), st.integers(1, 9999)), min_size=1,
                max_size=20, unique_by=lambda t: t[0]),
       st.lists(st.sampled_from(["*", "x", "X", "×", "-", " x ", " * ", " "]), min_size=20,
                max_size=20))
def test_orders_roundtrip(lines: list[tuple[int, int]], signs: list[str]) -> None:
    body = " ".join(f"{c:04d}{signs[i]}{q}" for i, (c, q) in enumerate(lines))
    result = ok(f"ORD 123456 {body}")
    assert result.args["items"] == items(*((f"{c:04d}", q) for c, q in lines))
