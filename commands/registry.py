"""The command registry: codes, aliases and formats, and keyword matching.

Keywords are case-insensitive; a Chinese keyword needs no separator after it, and keywords
match longest first (protocol.md), so `订货123456` is ORD and `CHD` wins over `CH`.

Matching rules (protocol.md fixes the Chinese one; the rest are this project's, all
unambiguous):
  * A Chinese keyword may run straight into its arguments: `订货123456 1001*5`.
  * A Latin keyword (code, pinyin initials, English alias) is the whole run of ASCII letters
    at the start of the message, so it must be followed by the end, a separator, a digit
    (`ORD123456 1001*5`, `CHD123`) or a Chinese character. `HELPME` is not HELP, and since
    the letter run is taken whole, `CHD` can never be read as `CH` + `D`.
  * `?` is HELP and may be followed by anything (`?ORD`).
  * The language of the reply follows the keyword: Chinese words and pinyin initials
    (typed by Chinese users, e.g. the carrier-standard `TD`) give "zh"; the English code and
    English aliases (`STOP`, `?`) give "en".
"""

from __future__ import annotations

from dataclasses import dataclass

from commands.normalize import is_cjk


@dataclass(frozen=True, slots=True)
class CommandSpec:
    code: str
    aliases: tuple[str, ...]  # Chinese words first, then pinyin initials, then English extras
    syntax: str  # format shown by HELP <cmd>
    english: tuple[str, ...] = ()  # which aliases are English words (STOP, ?), not pinyin
    syntax_zh: str = ""
    example: str = ""
    example_zh: str = ""
    summary: str = ""  # one line, for HELP and docs/commands.md
    summary_zh: str = ""
    # Positions (0-based, after the keyword) of arguments that are secrets — PINs and CFM
    # codes — masked wherever the message is logged, stored or read (commands/secrets.py).
    secret_args: tuple[int, ...] = ()

    @property
    def chinese(self) -> tuple[str, ...]:
        return tuple(a for a in self.aliases if is_cjk(a[0]))

    @property
    def pinyin(self) -> tuple[str, ...]:
        return tuple(a for a in self.aliases if not is_cjk(a[0]) and a not in self.english)

    @property
    def name_zh(self) -> str:
        """The Chinese keyword shown to Chinese users (the code when there is none)."""
        zh = self.chinese
        return zh[0] if zh else self.code

    def keyword_lang(self, word: str) -> str:
        if word.upper() == self.code or word.upper() in self.english:
            return "en"
        return "zh"


@dataclass(frozen=True, slots=True)
class Match:
    spec: CommandSpec
    keyword: str  # as written by the sender
    lang: str  # "zh" for a Chinese keyword or pinyin initials, else "en"
    rest: str  # the arguments, normalised


def _is_ascii_letter(ch: str) -> bool:
    return ("A" <= ch <= "Z") or ("a" <= ch <= "z")


class Registry:
    def __init__(self, specs: list[CommandSpec]):
        self.specs = {s.code: s for s in specs}
        self._latin: dict[str, tuple[CommandSpec, str]] = {}
        self._cjk: dict[str, tuple[CommandSpec, str]] = {}
        for spec in specs:
            for word in (spec.code, *spec.aliases):
                key = word.upper()
                table = self._cjk if is_cjk(word[0]) else self._latin
                if key in table or key in self._cjk or key in self._latin:
                    raise ValueError(f"keyword {word!r} registered twice")
                table[key] = (spec, spec.keyword_lang(word))
        # Chinese keywords are tried longest first at the start of the text.
        self._cjk_lengths = sorted({len(k) for k in self._cjk}, reverse=True)

    def get(self, code: str) -> CommandSpec | None:
        return self.specs.get(code.upper())

    def lookup(self, word: str) -> CommandSpec | None:
        """A whole word (code or any alias, any case) → its command, else None."""
        key = word.upper()
        hit = self._latin.get(key) or self._cjk.get(key)
        return hit[0] if hit else None

    def match(self, text: str) -> Match | None:
        """Find the keyword at the start of normalised text."""
        if not text:
            return None
        first = text[0]
        if first == "?":
            spec, lang = self._latin["?"]
            return Match(spec, "?", lang, text[1:].strip())
        if _is_ascii_letter(first):
            end = 1
            n = len(text)
            while end < n and _is_ascii_letter(text[end]):
                end += 1
            if end < n:
                nxt = text[end]
                if not (nxt == " " or "0" <= nxt <= "9" or is_cjk(nxt)):
                    return None
            hit = self._latin.get(text[:end].upper())
            if hit is None:
                return None
            return Match(hit[0], text[:end], hit[1], text[end:].strip())
        if is_cjk(first):
            for size in self._cjk_lengths:
                hit = self._cjk.get(text[:size])
                if hit is not None:
                    return Match(hit[0], text[:size], hit[1], text[size:].strip())
        return None


def _spec(code: str, aliases: str, syntax: str, syntax_zh: str, example: str, example_zh: str,
          summary: str, summary_zh: str, english: str = "",
          secret: tuple[int, ...] = ()) -> CommandSpec:
    return CommandSpec(code, tuple(aliases.split()), syntax, tuple(english.split()),
                       syntax_zh, example, example_zh, summary, summary_zh, secret)


# protocol.md's table, in its order. `aliases`: Chinese words, pinyin initials, English.
BUILTIN: list[CommandSpec] = [
    _spec("HELP", "帮助 BZ ?", "HELP [cmd]", "帮助 [指令]",
          "HELP ORD", "帮助订货",
          "list of commands, or one command's format", "指令列表，或某条指令的格式",
          english="?"),
    _spec("REG", "注册 ZC", "REG <account> <PIN>", "注册 <账号> <密码>",
          "REG R1001 123456", "注册R1001 123456",
          "bind this phone to your account", "把本手机绑定到您的账号", secret=(1,)),
    _spec("PIN", "改密 GM", "PIN <old> <new>", "改密 <旧密码> <新密码>",
          "PIN 123456 654321", "改密123456 654321",
          "change your PIN", "修改密码", secret=(0, 1)),
    _spec("ORD", "订货 DH", "ORD <PIN> <code>*<qty> ...", "订货 <密码> <编码>*<数量> ...",
          "ORD 123456 1001*5 1002*3", "订货123456 1001*5 1002*3",
          "place a new order", "新订单", secret=(0,)),
    _spec("MOD", "改单 GD", "MOD <PIN> <order> <code>*<qty> ...",
          "改单 <密码> <订单号> <编码>*<数量> ...",
          "MOD 123456 1024 1001*8 1002*0", "改单123456 1024 1001*8 1002*0",
          "change an order not yet reviewed; qty 0 removes a line",
          "修改未审核的订单，数量0删除该行", secret=(0,)),
    _spec("CAN", "撤单 CD", "CAN <PIN> <order>", "撤单 <密码> <订单号>",
          "CAN 123456 1024", "撤单123456 1024",
          "cancel an order not yet reviewed", "撤销未审核的订单", secret=(0,)),
    _spec("RPT", "重复 CF", "RPT <PIN>", "重复 <密码>",
          "RPT 123456", "重复123456",
          "place your previous order again", "按上一张订单再订一次", secret=(0,)),
    _spec("OQ", "查单 CHD", "OQ [order]", "查单 [订单号]",
          "OQ 1024", "查单1024",
          "status of your latest or the given order", "查询最近一张或指定订单的状态"),
    _spec("SAL", "销量 XL", "SAL [date] <code>*<qty> ...", "销量 [日期] <编码>*<数量> ...",
          "SAL 0115 1001*12 1002*4", "销量0115 1001*12 1002*4",
          "daily sales report (date YYYYMMDD or MMDD, default today); resending replaces it",
          "每日销量上报（日期为8位年月日或4位月日，默认今天），重发覆盖"),
    _spec("STK", "库存 KC", "STK [date] <code>*<qty> ...", "库存 [日期] <编码>*<数量> ...",
          "STK 1001*30 1002*8", "库存1001*30 1002*8",
          "stock count (date optional); resending replaces it",
          "库存盘点上报（日期可省），重发覆盖"),
    _spec("SN", "串号 CH", "SN <serial> [<serial> ...]", "串号 <串号> [<串号> ...]",
          "SN 356938035643809", "串号356938035643809",
          "report units sold by serial/IMEI", "按串号上报已售机器（手机串号须通过校验）"),
    _spec("BAL", "余额 YE", "BAL", "余额",
          "BAL", "余额",
          "balance, last bill and due date", "账户余额、上期账单及到期日"),
    _spec("Q", "查询 CX", "Q SALES [day|month] | Q STOCK <code> | Q ROUTE",
          "查询 销量 [日|月] | 查询 库存 <编码> | 查询 线路",
          "Q SALES month", "查询销量 本月",
          "sales, stock or route figures your role may see", "按角色查询销量、库存或线路"),
    _spec("SUB", "订阅 DY", "SUB <topic> [HH-HH]", "订阅 <主题> [起-止点]",
          "SUB SALES 8-20", "订阅SALES 8-20",
          "subscribe to a topic, optionally within hours", "订阅主题，可限定接收时段"),
    _spec("UNSUB", "退订 TD STOP", "UNSUB <topic>|ALL", "退订 <主题>|全部",
          "UNSUB SALES", "退订SALES",
          "unsubscribe; STOP or TD alone stops everything",
          "退订；单发 退订、TD 或 STOP 退订全部",
          english="STOP"),
    _spec("CHG", "改号 GH", "CHG <PIN> <new phone>", "改号 <密码> <新号码>",
          "CHG 123456 13912345678", "改号123456 13912345678",
          "move your account to a new phone (confirm with CFM)",
          "把账号迁到新手机号（新号回复 确认 <验证码>）", secret=(0,)),
    _spec("CFM", "确认 QR", "CFM <code>", "确认 <验证码>",
          "CFM 4821", "确认4821",
          "confirm a pending CHG from the new phone", "在新手机上确认改号", secret=(0,)),
]

REGISTRY = Registry(BUILTIN)
