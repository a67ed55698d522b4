"""The SMS command parser: text in, `Parsed` or `ParseError` out. Pure, never raises.

    parse(text, today=date) -> Parsed | ParseError
    render_parse_error(err) -> "ERR E02 item 3 '10x1' is not CODE*QTY. HELP ORD for format"

Where protocol.md is silent the parser decides as follows (docs/commands.md lists these too):
  * Latin keywords may run straight into digits (`ORD123456 1001*5`, `CHD1024`); see
    commands/registry.py for the keyword rules. Trailing `.`, `!`, `?`, `。` are dropped
    (`STOP.`, `HELP?`).
  * Items: `CODE*QTY`, `CODExQTY`, `CODE x QTY`, `CODE×QTY`, `CODE-QTY` (spaces around the
    sign allowed) and the pair `CODE QTY`. A product code named twice in one message is E02
    (naming both items), never merged: a repeated line is usually a typo.
  * Quantities: 0 is E02 except in MOD (removes the line); above a sanity cap (`MAX_QTY`,
    9999 for orders, 99999 for sales/stock reports) is E07 naming the item. The per-product
    maximum is the handlers' business.
  * SAL/STK date: the first argument is a date when it has 8 digits, or when it opens an odd
    run of bare numbers (`SAL 0115 1001 5` is dated, `SAL 1001 5` is not). `common.fields.
    report_date` judges it: an `MMDD` date is the most recent such day not in the future
    (`1231` sent on 2 January is last year's); a future date, or one more than
    SMSGW_MAX_BACKDATE_DAYS (default 31) days ago, is E02 naming the date.
  * Product codes are checked by `common.fields.product_code` (4 digits), as in the API.
  * Accounts, topics, serials and CFM codes are upper-cased (case-insensitive, like
    keywords); a phone is read by common.phones.canonical (E.164 digits without `+`, a
    national number in SMSGW_DEFAULT_COUNTRY), so every written form is one phone.
  * Bare `UNSUB`, `STOP`, `TD`, `退订` and `UNSUB ALL` / `全部` / `所有` → topic None (all).
  * `HELP <word>` looks only at the first word; `HELP ORD please` is help for ORD.
  * Extra arguments anywhere else are E02 ("unexpected '...'"), so `CAN <PIN> 12 13` is not
    silently half-done.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from commands.normalize import is_cjk, normalize, strip_trailing_punctuation
from commands.parsed import Item, Parsed, ParseError
from commands.registry import REGISTRY, Registry
from commands.templates import LANGS, render
from common.fields import FieldError, product_code, report_date
from common.phones import canonical_or_none

MAX_QTY = {"ORD": 9999, "MOD": 9999, "SAL": 99999, "STK": 99999}

_ITEM = re.compile(r"([0-9]+)[*xX×\-]([0-9]+)")
_ITEMISH = re.compile(r"[0-9]*[*xX×\-][0-9]*")  # looks like an item (for "missing PIN")
# `1001 * 5`, `1001 x5`, `1001x 5` → one token.
_JOIN = re.compile(r"(?<=[0-9]) ?([*xX×\-]) ?(?=[0-9])")
_ACCOUNT = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
_SERIAL = re.compile(r"[A-Za-z0-9]{6,20}")
_CFM_CODE = re.compile(r"[A-Za-z0-9]{4,10}")
_TOPIC = re.compile(r"[A-Za-z0-9_\u4e00-\u9fff]{1,20}")
_SUB = re.compile(r"(\S+?) ?(?:([0-9]{1,2}) ?[\-~–—至到] ?([0-9]{1,2}))?")
_WINDOW = re.compile(r"([0-9]{1,2})[\-~–—至到]([0-9]{1,2})")
_Q = re.compile(r"(SALES|SALE|STOCK|ROUTE|销量|销售|库存|线路|路线) ?(.*)", re.I | re.A)
_Q_WHAT = {"SALES": "SALES", "SALE": "SALES", "销量": "SALES", "销售": "SALES",
           "STOCK": "STOCK", "库存": "STOCK", "ROUTE": "ROUTE", "线路": "ROUTE", "路线": "ROUTE"}
_PERIODS = {"DAY": "day", "TODAY": "day", "D": "day", "日": "day", "今日": "day", "今天": "day",
            "当日": "day", "本日": "day",
            "MONTH": "month", "M": "month", "月": "month", "本月": "month", "当月": "month"}
_ALL = {"ALL", "全部", "所有"}


class _Fail(Exception):
    """Internal control flow: an argument error, turned into a ParseError by parse()."""

    def __init__(self, key: str, err_code: str = "E02", /, **params: Any):
        super().__init__(key)
        self.key = key
        self.code = err_code
        self.params = params


def _digits(s: str) -> bool:
    return s.isdigit() and s.isascii()


def _guess_lang(text: str) -> str:
    return "zh" if any(is_cjk(c) for c in text) else "en"


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def parse(text: str, *, today: date, registry: Registry = REGISTRY) -> Parsed | ParseError:
    """Parse one SMS. Never raises: anything not understood is a `ParseError`."""
    try:
        return _parse(text, today, registry)
    except Exception:  # a parser bug must still get the sender an answer
        lang = _guess_lang(text) if isinstance(text, str) else "en"
        return ParseError("E02", lang, None, "err_not_understood")


def _parse(text: str, today: date, registry: Registry) -> Parsed | ParseError:
    norm = strip_trailing_punctuation(normalize(text))
    if not norm:
        return ParseError("E01", _guess_lang(text), None, "err_empty")
    match = registry.match(norm)
    if match is None:
        word = norm.split(" ", 1)[0]
        return ParseError("E01", _guess_lang(norm), None, "err_unknown_command",
                          {"word": word})
    code = match.spec.code
    try:
        args = _COMMANDS[code](match.rest, today, registry)
    except _Fail as fail:
        return ParseError(fail.code, match.lang, code, fail.key, fail.params)
    return Parsed(code, match.lang, match.keyword, args)


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------


def _tokens(rest: str) -> list[str]:
    return rest.split(" ") if rest else []


def _no_more(tokens: list[str], used: int) -> None:
    if len(tokens) > used:
        raise _Fail("err_extra", value=tokens[used])


def _pin(tokens: list[str], i: int, arg: str = "pin") -> str:
    if i >= len(tokens) or (arg == "pin" and _ITEMISH.fullmatch(tokens[i])):
        raise _Fail("err_missing", arg=arg)
    tok = tokens[i]
    if len(tok) != 6 or not _digits(tok):
        raise _Fail("err_pin", arg=arg, value=tok)
    return tok


def _order(tokens: list[str], i: int) -> str:
    if i >= len(tokens) or _ITEMISH.fullmatch(tokens[i]):
        raise _Fail("err_missing", arg="order")
    tok = tokens[i]
    if not (_digits(tok) and len(tok) <= 20):
        raise _Fail("err_order", value=tok)
    return tok


def _items(tokens: list[str], i: int, command: str) -> tuple[Item, ...]:
    cap = MAX_QTY[command]
    allow_zero = command == "MOD"
    items: list[Item] = []
    seen: dict[str, int] = {}
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        pos = len(items) + 1
        m = _ITEM.fullmatch(tok)
        if m is not None:
            code, qty_s = m.group(1), m.group(2)
            shown = tok
            i += 1
        elif _digits(tok):
            if i + 1 < n and _digits(tokens[i + 1]):
                code, qty_s = tok, tokens[i + 1]
                shown = f"{tok} {qty_s}"
                i += 2
            else:
                raise _Fail("err_item_no_qty", pos=pos, value=tok)
        else:
            raise _Fail("err_item", pos=pos, value=tok)
        try:
            product_code(code)
        except FieldError:
            raise _Fail("err_item_code", pos=pos, value=shown) from None
        significant = qty_s.lstrip("0")
        if len(significant) > 6 or int(significant or "0") > cap:
            raise _Fail("err_qty_big", "E07", pos=pos, value=shown, max=cap)
        qty = int(significant or "0")
        if qty == 0 and not allow_zero:
            raise _Fail("err_qty_zero", pos=pos, value=shown)
        if code in seen:
            raise _Fail("err_item_dup", pos=pos, value=shown, product=code, first=seen[code])
        seen[code] = pos
        items.append(Item(code, qty, pos))
    if not items:
        raise _Fail("err_no_items")
    return tuple(items)


def _item_tokens(rest: str) -> list[str]:
    return _tokens(_JOIN.sub(r"\1", rest) if rest else rest)


def _date(tok: str, today: date) -> date:
    try:
        return report_date(tok, today=today)
    except FieldError as exc:
        raise _Fail(f"err_{exc.key}", **exc.params) from None


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _help(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    if not rest:
        return {"command": None}
    found = registry.match(rest)
    if found is None:
        raise _Fail("err_unknown_help", "E01", word=rest.split(" ", 1)[0])
    return {"command": found.spec.code}


def _reg(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _tokens(rest)
    if not t:
        raise _Fail("err_missing", arg="account")
    if not _ACCOUNT.fullmatch(t[0]):
        raise _Fail("err_account", value=t[0])
    pin = _pin(t, 1)
    _no_more(t, 2)
    return {"account": t[0].upper(), "pin": pin}


def _pin_cmd(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _tokens(rest)
    old = _pin(t, 0, "old_pin")
    new = _pin(t, 1, "new_pin")
    _no_more(t, 2)
    return {"old": old, "new": new}


def _ord(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _item_tokens(rest)
    pin = _pin(t, 0)
    return {"pin": pin, "items": _items(t, 1, "ORD")}


def _mod(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _item_tokens(rest)
    pin = _pin(t, 0)
    order = _order(t, 1)
    return {"pin": pin, "order": order, "items": _items(t, 2, "MOD")}


def _can(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _tokens(rest)
    pin = _pin(t, 0)
    order = _order(t, 1)
    _no_more(t, 2)
    return {"pin": pin, "order": order}


def _rpt(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _tokens(rest)
    pin = _pin(t, 0)
    _no_more(t, 1)
    return {"pin": pin}


def _oq(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _tokens(rest)
    if not t:
        return {"order": None}
    order = _order(t, 0)
    _no_more(t, 1)
    return {"order": order}


def _report(command: str, rest: str, today: date) -> dict[str, Any]:
    t = _item_tokens(rest)
    day = today
    start = 0
    if t and _digits(t[0]):
        run = 1
        while run < len(t) and _digits(t[run]):
            run += 1
        if len(t[0]) == 8 or run % 2 == 1:
            day = _date(t[0], today)
            start = 1
    return {"date": day, "items": _items(t, start, command)}


def _sal(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    return _report("SAL", rest, today)


def _stk(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    return _report("STK", rest, today)


def _sn(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _tokens(rest)
    if not t:
        raise _Fail("err_missing", arg="serial")
    for pos, tok in enumerate(t, 1):
        if not _SERIAL.fullmatch(tok):
            raise _Fail("err_serial", pos=pos, value=tok)
    return {"serials": tuple(tok.upper() for tok in t)}


def _bal(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    _no_more(_tokens(rest), 0)
    return {}


def _q(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    if not rest:
        raise _Fail("err_missing", arg="what")
    m = _Q.fullmatch(rest)
    if m is None:
        raise _Fail("err_q_what", value=rest.split(" ", 1)[0])
    what = _Q_WHAT[m.group(1).upper()]
    more = m.group(2)
    period = code = None
    if what == "SALES":
        if more:
            t = _tokens(more)
            period = _PERIODS.get(t[0].upper())
            if period is None:
                raise _Fail("err_q_period", value=t[0])
            _no_more(t, 1)
    elif what == "STOCK":
        t = _tokens(more)
        if not t:
            raise _Fail("err_missing", arg="product")
        try:
            product_code(t[0])
        except FieldError as exc:
            raise _Fail(f"err_{exc.key}", **exc.params) from None
        _no_more(t, 1)
        code = t[0]
    else:
        _no_more(_tokens(more), 0)
    return {"what": what, "period": period, "code": code}


def _topic(tok: str) -> str:
    if not _TOPIC.fullmatch(tok):
        raise _Fail("err_topic", value=tok)
    return tok.upper()


def _sub(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    if not rest:
        raise _Fail("err_missing", arg="topic")
    m = _SUB.fullmatch(rest)
    if m is None:
        t = rest.split(" ")
        _topic(t[0])
        if not _WINDOW.fullmatch(t[1]):
            raise _Fail("err_window", value=t[1])
        raise _Fail("err_extra", value=t[2])
    topic = _topic(m.group(1))
    window = None
    if m.group(2) is not None:
        start, end = int(m.group(2)), int(m.group(3))
        if start > 24 or end > 24 or start == end:
            raise _Fail("err_window", value=rest[m.end(1):].strip())
        window = (start, end)
    return {"topic": topic, "window": window}


def _unsub(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _tokens(rest)
    if not t:
        return {"topic": None}
    _no_more(t, 1)
    if t[0].upper() in _ALL:
        return {"topic": None}
    return {"topic": _topic(t[0])}


def _chg(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _tokens(rest)
    pin = _pin(t, 0)
    if len(t) < 2:
        raise _Fail("err_missing", arg="phone")
    # The one normaliser (common.phones): `+86 136-0000-0099` is the handset 8613600000099.
    phone = canonical_or_none(" ".join(t[1:]))
    if phone is None:
        raise _Fail("err_phone", value=" ".join(t[1:]))
    return {"pin": pin, "phone": phone}


def _cfm(rest: str, today: date, registry: Registry) -> dict[str, Any]:
    t = _tokens(rest)
    if not t:
        raise _Fail("err_missing", arg="confirm_code")
    if not _CFM_CODE.fullmatch(t[0]):
        raise _Fail("err_cfm_code", value=t[0])
    _no_more(t, 1)
    return {"code": t[0].upper()}


_COMMANDS = {
    "HELP": _help, "REG": _reg, "PIN": _pin_cmd, "ORD": _ord, "MOD": _mod, "CAN": _can,
    "RPT": _rpt, "OQ": _oq, "SAL": _sal, "STK": _stk, "SN": _sn, "BAL": _bal, "Q": _q,
    "SUB": _sub, "UNSUB": _unsub, "CHG": _chg, "CFM": _cfm,
}

# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

_CLIP = 20


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _CLIP:
        return value[:_CLIP - 3] + "..."
    return value


def render_parse_error(err: ParseError) -> str:
    """`ERR <code> <what and where>. HELP <cmd> for format`, in the error's language."""
    lang = err.lang if err.lang in LANGS else "en"
    params = {k: _clip(v) for k, v in err.params.items()}
    if "arg" in params:
        params["arg"] = render(lang, f"arg_{params['arg']}")
    what = render(lang, err.key, **params)
    spec = REGISTRY.get(err.command) if err.command else None
    if spec is None or spec.code == "HELP":
        return render(lang, "err_general", code=err.code, what=what)
    cmd = spec.name_zh if lang == "zh" else spec.code
    return render(lang, "err", code=err.code, what=what, cmd=cmd)
