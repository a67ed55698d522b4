"""Templates: plural forms in English, no English words in Chinese (issue 8)."""

from __future__ import annotations

import re
import string

import pytest

from commands.help import help_text
from commands.registry import REGISTRY
from commands.templates import english_words, fill, render, table


def placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


class Sample(dict[str, object]):
    """Any placeholder: a count (2), which is also how names and codes look in replies."""

    def __missing__(self, key: str) -> object:
        return 2


@pytest.mark.parametrize("key", sorted(table("zh")))
def test_every_zh_template_has_no_english_words(key: str) -> None:
    text = fill("zh", table("zh")[key], Sample())
    assert english_words(text) == [], f"{key}: {text}"


@pytest.mark.parametrize("command", [None, *REGISTRY.specs])
def test_zh_help_has_no_english_words(command: str | None) -> None:
    assert english_words(help_text("zh", command)) == []


def test_every_template_has_both_languages() -> None:
    en, zh = table("en"), table("zh")
    assert set(en) == set(zh)


def test_checker_catches_english() -> None:
    assert english_words("订单12：awaiting review；合计1元") == ["awaiting", "review"]
    assert english_words("ERR E02 订货 ORD DH R1001 1001×5") == []


# --- plurals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "expected"), [
    (0, "0 items"), (1, "1 item"), (2, "2 items"), (11, "11 items"), (21, "21 items"),
    (-1, "-1 item"), ("x", "x items"),
])
def test_english_plural(n: object, expected: str) -> None:
    assert fill("en", "{n:item|items}", {"n": n}) == expected


def test_chinese_has_one_form() -> None:
    assert fill("zh", "{n:种|种}", {"n": 1}) == "1 种"
    assert fill("zh", "{n}种", {"n": 1}) == "1种"


def test_ordinary_format_specs_still_work() -> None:
    assert fill("en", "{n:03d} {x:>3}", {"n": 7, "x": "a"}) == "007   a"


@pytest.mark.parametrize(("key", "values", "one", "many"), [
    ("sal_ok", {"date": "2024-01-15", "revenue": "1.00"},
     "1 item, 1 unit", "2 items, 2 units"),
    ("stk_replaced", {"date": "2024-01-15"}, "1 item, 1 unit", "2 items, 2 units"),
    ("q_units", {}, "1 unit", "2 units"),
    ("e04_wrong_pin", {}, "(1 try left)", "(2 tries left)"),
    ("chg_sent", {"phone": "8613900000000"}, "within 1 minute.", "within 2 minutes."),
    ("q_route", {"route": "R", "missing": "-"}, "1 retailer,", "2 retailers,"),
    ("notice_digest_daily_sales", {"date": "2024-01-15", "revenue": "1.00"},
     "1/1 retailer reported, 1 unit", "2/2 retailers reported, 2 units"),
    ("notice_digest_weekly_collection",
     {"week": "3", "start": "a", "end": "b", "revenue": "1.00"},
     "on 1 day, 1 unit", "on 2 days, 2 units"),
])
def test_english_replies_count_right(key: str, values: dict[str, object], one: str,
                                     many: str) -> None:
    counts = [p for p in placeholders(table("en")[key]) if p not in values]
    assert one in render("en", key, **values, **dict.fromkeys(counts, 1))
    assert many in render("en", key, **values, **dict.fromkeys(counts, 2))


def test_no_count_without_a_plural_form() -> None:
    """A count followed by a plural noun ("{n} items") must use the plural convention."""
    bare = re.compile(r"\{(items|units|retailers|reports|left|minutes|dup|total)\}"
                      r" (items|units|retailers|days|tries|min|minutes|retailers)\b")
    for lang in ("en",):
        for key, text in table(lang).items():
            assert not bare.search(text), f"{lang}/{key}: {text}"
