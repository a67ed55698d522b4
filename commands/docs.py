"""Generates docs/commands.md from the registry, the parser and the templates.

    python -m commands.docs > docs/commands.md

tests/commands/test_docs.py fails when the committed file differs from `render_markdown()`.
"""

from __future__ import annotations

import sys
from datetime import date

from commands.help import help_text
from commands.parse import MAX_QTY, parse, render_parse_error
from commands.parsed import Item, Parsed, ParseError
from commands.registry import REGISTRY, Registry
from commands.roles import load_roles
from store.models import MO_DISPOSITIONS

# protocol.md, "Error codes"; "parser" marks the codes commands/parse.py itself produces.
ERROR_CODES: list[tuple[str, str, str, bool]] = [
    ("E01", "unknown command", "无法识别的指令", True),
    ("E02", "malformed arguments (says which item)", "参数格式错误（指明哪一项）", True),
    ("E03", "sender not registered / not allowed this command", "未注册或无权使用该指令", False),
    ("E04", "wrong PIN (5 wrong in 30 min locks the number for 30 min: E05)",
     "密码错误（30分钟内错5次锁定30分钟：E05）", False),
    ("E05", "locked", "已锁定", False),
    ("E06", "unknown or inactive product code (says which)", "商品编码不存在或已停用（指明哪个）",
     False),
    ("E07", "quantity out of range (says which)", "数量超出范围（指明哪一项）", True),
    ("E08", "outside the ordering window / not an order day", "不在订货时段或非订货日", False),
    ("E09", "order not found or no longer changeable", "订单不存在或已不可修改", False),
    ("E10", "insufficient funds (order kept as pending-funds)", "余额不足（订单保留待付款）",
     False),
    ("E11", "unknown topic", "未知主题", False),
    ("E12", "rate limited", "发送过于频繁", False),
]

EXAMPLE_DAY = date(2024, 1, 15)

ERROR_EXAMPLES = [
    "ORD 123456 1001*5 1002*3 10x1",
    "ORD 1001*5",
    "ORD 123456 1001*5 1001*2",
    "ORD 123456 1001*50000",
    "SAL 0230 1001*5",
    "SAL 20240120 1001*5",
    "SAL 20231201 1001*5",
    "SUB SALES 20-8-1",
    "订货123456 1001*5 1002",
    "HELPME",
]

LENIENCY = [
    "Text is normalised first: NFKC (full-width `ＯＲＤ１２３４５６` is `ORD123456`), "
    "separators (space `,` `，` `、` `;` `#`) collapsed; trailing `.` `!` `?` `。` dropped "
    "(`STOP.`, `HELP?`).",
    "A Chinese keyword needs no separator (`订货123456 1001*5`). A Latin keyword is the whole "
    "run of letters at the start, so it may be followed by digits or Chinese (`ORD123456`, "
    "`CHD1024`) but not by more letters (`HELPME` is E01). Longest keyword first: `CHD` is OQ, "
    "`CH` is SN.",
    "Replies follow the keyword's language: Chinese words and pinyin initials (`DH`, `TD`) "
    "→ Chinese; the English code and `STOP`, `?` → English. E01 replies are Chinese when the "
    "message has Chinese characters.",
    "Items: `1001*5`, `1001x5`, `1001 x 5`, `1001×5`, `1001-5`, or the pair `1001 5`. "
    "A product code twice in one message is E02 (naming both items), never merged.",
    "Quantity 0 is E02 except in MOD (removes the line). Above the parser's sanity cap "
    f"(ORD/MOD {MAX_QTY['ORD']}, SAL/STK {MAX_QTY['SAL']}) is E07; the per-product maximum is "
    "checked after parsing.",
    "SAL/STK date: the first argument is a date when it has 8 digits or opens an odd run of "
    "bare numbers (`SAL 0115 1001 5` is dated, `SAL 1001 5` is not). `MMDD` is the most "
    "recent such day not in the future (`1231` sent on 2 January is last year's, `0115` sent "
    "on 15 January is today). An impossible date, a future date, or one more than "
    "`SMSGW_MAX_BACKDATE_DAYS` (default 31) days ago is E02 naming the date.",
    "Accounts, topics, serials and CFM codes are case-insensitive (upper-cased). A new phone "
    "may be written in any form: `+86 136-0000-0099`, `008613600000099`, `8613600000099` and "
    "`13600000099` are one phone, kept as E.164 digits without `+` (`8613600000099`); a "
    "national number is read in the country of `SMSGW_DEFAULT_COUNTRY` (default 86).",
    "`STOP`, `TD`, `退订` or `UNSUB` alone, and `UNSUB ALL` / `全部` / `所有`, unsubscribe from "
    "everything.",
    "`Q SALES` takes `day`/`today`/`日`/`今日`/`今天` or `month`/`月`/`本月`; Chinese subjects "
    "`销量` `库存` `线路` work too (`查询销量本月`). `SUB` windows may wrap midnight (`22-6`).",
    "Extra arguments are E02 (`unexpected '...'`), except after `HELP <cmd>`.",
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""


def _value(value: object) -> str:
    if isinstance(value, tuple) and value and isinstance(value[0], Item):
        return "(" + ", ".join(f"{i.code}×{i.qty}" for i in value) + ")"
    if isinstance(value, date):
        return value.isoformat()
    return repr(value)


def _outcome(result: Parsed | ParseError) -> str:
    if isinstance(result, ParseError):
        return f"{result.code} `{_cell(render_parse_error(result))}`"
    args = ", ".join(f"{k}={_value(v)}" for k, v in result.args.items())
    return f"{result.command} ({result.lang}) {_cell(args)}".rstrip()


HANDLING = [
    "Every message gets an answer, or a recorded reason why not. Each has its effect once: "
    "an order, a report or an opt-out is never applied twice because the network delivered "
    "the message twice.",
    "**Sending the same text again.** An SMSC delivers a message again only when it did not "
    "get the gateway's acknowledgement. So the same text from the same phone is a new "
    "message, handled and answered again, when the earlier one's acknowledgement surely "
    "arrived: the SMPP session it went out on stayed up longer than the SMSC's response "
    "timeout (`SMSGW_SMSC_RESPONSE_TIMEOUT`, default 30 s). Otherwise (the session dropped, "
    "the gateway restarted, the acknowledgement was late, or simply less than that time has "
    "passed) it is taken as the SMSC redelivering the earlier message, however late it "
    "comes (within `SMSGW_MO_IDENTITY_HOURS`, default 48): no second order or report, and "
    "the earlier answer is sent again (once the earlier message is handled, if it is not "
    "yet). `HELP`, `BAL`, `OQ` and `Q` change nothing, so they are simply answered again, "
    "afresh. When the SMSC puts its own message id on the message (`receipted_message_id` "
    "on a deliver_sm that is not a receipt), the id decides instead.",
    "**Opt-out always works.** `STOP`, `TD`, `退订` and `UNSUB …` are applied whatever the "
    "rate limit says; over the limit, the confirmation is sent at most once per window.",
    "**Rate limit.** A phone gets at most `SMSGW_RATE_LIMIT_MESSAGES` (default 20) messages "
    "handled per `SMSGW_RATE_LIMIT_SECONDS` (default 60); the first message over it gets one "
    "E12 per window, the rest are recorded and not answered.",
    "**A phone resending.** The same error answer to the very same text is not sent again "
    "within a minute; any other answer, or an answer to a different text, always goes.",
]


def _help_audiences() -> list[tuple[str, frozenset[str]]]:
    roles = load_roles()
    out = [("unregistered", frozenset(roles.public))]
    for name, role in roles.roles.items():
        out.append((name, frozenset(roles.public | role.commands)))
    return out


def render_markdown(registry: Registry = REGISTRY) -> str:
    out: list[str] = [
        "# SMS commands",
        "",
        "<!-- Generated by `python -m commands.docs > docs/commands.md`; do not edit. -->",
        "",
        "The SMS command protocol as this gateway implements it, generated from the command "
        "registry ([commands/registry.py](../commands/registry.py)), the parser "
        "([commands/parse.py](../commands/parse.py)), the roles "
        "([commands/roles.yaml](../commands/roles.yaml)) and the reply templates "
        "([commands/templates/](../commands/templates/)). Keywords are case-insensitive.",
        "",
        "## Commands",
        "",
        "| code | Chinese | pinyin | other | syntax | description | 说明 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for spec in registry.specs.values():
        out.append(
            f"| {spec.code} | {' '.join(spec.chinese)} | {' '.join(spec.pinyin)} "
            f"| {' '.join(_code(e) for e in spec.english)} | {_code(spec.syntax)} "
            f"| {_cell(spec.summary)} | {_cell(spec.summary_zh)} |")
    out += ["", "## Examples", "",
            f"Parsed with today = {EXAMPLE_DAY.isoformat()}.", "",
            "| message | parsed as |", "| --- | --- |"]
    for spec in registry.specs.values():
        for text in dict.fromkeys((spec.example, spec.example_zh)):
            if text:
                out.append(f"| {_code(text)} | {_outcome(parse(text, today=EXAMPLE_DAY))} |")
    out += ["", "## Error codes", "",
            "| code | meaning | 含义 | from the parser |", "| --- | --- | --- | --- |"]
    for code, en, zh, parser in ERROR_CODES:
        out.append(f"| {code} | {_cell(en)} | {_cell(zh)} | {'yes' if parser else ''} |")
    out += ["", "Replies say what was wrong and where, and how to get help:", "",
            "| message | reply |", "| --- | --- |"]
    for text in ERROR_EXAMPLES:
        out.append(f"| {_code(text)} | {_outcome(parse(text, today=EXAMPLE_DAY))} |")
    out += ["", "## HELP replies", "",
            "`HELP` lists only the commands the sender may use: an unregistered number the "
            "public ones, a registered one those of its role (commands/roles.yaml; a retailer "
            "without SMS ordering is not offered ORD MOD CAN RPT). `HELP <cmd>` shows the "
            "format, or says the command is not available (unregistered: how to register).",
            "", "| sender | HELP | 帮助 |", "| --- | --- | --- |"]
    for who, usable in _help_audiences():
        out.append(f"| {who} | {_code(help_text('en', None, usable=usable))} "
                   f"| {_code(help_text('zh', None, usable=usable))} |")
    out += ["", "```", help_text("en", "ORD"), help_text("zh", "ORD"),
            help_text("en", "ORD", usable=load_roles().public, registered=False),
            help_text("zh", "ORD", usable=load_roles().public, registered=False),
            "```", "",
            "## Parsing rules where the protocol is silent", ""]
    out += [f"- {rule}" for rule in LENIENCY]
    out += ["", "## Every message is handled", ""]
    out += [f"{para}\n" for para in HANDLING]
    out += ["Each message's disposition is stored with it, shown in the per-phone interaction "
            "log (`GET /phones/{phone}/interactions`) and in `GET /messages?direction=in`, "
            "and counted in `/metrics` (`smsgw_mo_dispositions_total`):", "",
            "| disposition | meaning |", "| --- | --- |"]
    out += [f"| `{name}` | {_cell(meaning)} |" for name, meaning in MO_DISPOSITIONS.items()]
    return "\n".join(out) + "\n"


def main() -> None:
    sys.stdout.write(render_markdown())


if __name__ == "__main__":
    main()
