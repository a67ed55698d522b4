"""Rule engine: matching (pure), validation, YAML seeding, live reload, tag/forward effects."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from commands.rules import (
    RuleCache,
    RuleError,
    RuleSet,
    apply_tag,
    bump_version,
    default_rules_path,
    delete_rule,
    get_version,
    load_yaml,
    record_forward,
    rule_reply,
    rules_from_db,
    save_rule,
    seed_from_yaml,
    sender_profile,
    validate_rule,
)
from store.models import forwards, inbound_messages, phone_tags, rules
from store.store import Store

NOW = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
KNOWN = {"HELP", "ORD", "BAL"}
NOON = time(12, 0)
PROTOCOL_KEYWORDS = (
    "HELP 帮助 BZ ? REG 注册 ZC PIN 改密 GM ORD 订货 DH MOD 改单 GD CAN 撤单 CD RPT 重复 CF "
    "OQ 查单 CHD SAL 销量 XL STK 库存 KC SN 串号 CH BAL 余额 YE Q 查询 CX SUB 订阅 DY "
    "UNSUB 退订 TD STOP CHG 改号 GH CFM 确认 QR")


def rule(**kw: Any) -> Any:
    data: dict[str, Any] = {"name": "r", "action": "reply", "argument": "hi"}
    data.update(kw)
    return validate_rule(data, known_commands=KNOWN)


def match(rs: RuleSet, text: str = "HOURS", *, keyword: str | None = None,
          role: str | None = None, groups: frozenset[str] = frozenset(),
          at: time = NOON) -> Any:
    kw = keyword if keyword is not None else text.split(" ", 1)[0]
    return rs.match(text_normalised=text, keyword=kw, role=role, groups=groups, local_time=at)


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------

def test_priority_order_lower_first_then_id() -> None:
    rs = RuleSet([rule(name="late", priority=20, keyword="HOURS"),
                  rule(name="early", priority=10, keyword="HOURS"),
                  rule(name="tie-b", priority=5, keyword="X", id=2),
                  rule(name="tie-a", priority=5, keyword="X", id=1)])
    assert match(rs).name == "early"
    assert match(rs, "X").name == "tie-a"
    assert [r.name for r in rs] == ["tie-a", "tie-b", "early", "late"]


def test_keyword_case_insensitive_and_alternatives() -> None:
    rs = RuleSet([rule(keyword=["HOURS", "营业时间"])])
    assert match(rs, "hours")
    assert match(rs, "Hours please")
    assert match(rs, "营业时间")
    assert match(rs, "营业时间几点", keyword="营业时间几点")  # Chinese runs on unseparated
    assert match(rs, "HOURSX") is None
    assert match(rs, "WHAT HOURS") is None
    assert rule(keyword="A|b").keywords == ("a", "b")


def test_pattern_is_searched_in_normalised_text() -> None:
    rs = RuleSet([rule(pattern=r"\bprice\b|价格")])
    assert match(rs, "what is the price today")
    assert match(rs, "请问价格")
    assert match(rs, "prices") is None


def test_all_set_conditions_must_hold() -> None:
    rs = RuleSet([rule(keyword="Q", pattern=r"\bSTOCK\b")])
    assert match(rs, "Q STOCK 1001")
    assert match(rs, "Q SALES") is None


def test_role_and_group() -> None:
    rs = RuleSet([rule(name="mgr", role="manager", keyword="Z", priority=1),
                  rule(name="vip", group="vip", keyword="Z", priority=2)])
    assert match(rs, "Z", role="manager").name == "mgr"
    assert match(rs, "Z", role="retailer", groups=frozenset({"vip"})).name == "vip"
    assert match(rs, "Z", role="retailer") is None
    assert match(rs, "Z", role=None) is None


def test_time_window() -> None:
    rs = RuleSet([rule(window="09:00-17:30")])
    assert match(rs, at=time(9, 0))
    assert match(rs, at=time(17, 29, 59))
    assert match(rs, at=time(17, 30)) is None
    assert match(rs, at=time(8, 59)) is None


def test_time_window_past_midnight() -> None:
    rs = RuleSet([rule(window_start="22:00", window_end="06:00")])
    for t in (time(22, 0), time(23, 59), time(0, 0), time(5, 59)):
        assert match(rs, at=t), t
    for t in (time(6, 0), time(12, 0), time(21, 59)):
        assert match(rs, at=t) is None, t


def test_yaml_sexagesimal_times_are_understood() -> None:
    # YAML 1.1 reads an unquoted 22:00 as the integer 1320.
    r = rule(window_start=22 * 60, window_end=6 * 60)
    assert (r.window_start, r.window_end) == (time(22, 0), time(6, 0))


def test_disabled_rule_never_matches() -> None:
    rs = RuleSet([rule(name="off", keyword="HOURS", enabled=False, priority=1),
                  rule(name="on", keyword="HOURS", priority=2)])
    assert match(rs).name == "on"
    assert match(RuleSet([rule(keyword="HOURS", enabled=False)])) is None


def test_decide_applies_tags_and_continues() -> None:
    rs = RuleSet([rule(name="t1", action="tag", argument="promo", keyword="PROMO", priority=1),
                  rule(name="t2", action="tag", argument="any", priority=2),
                  rule(name="ans", keyword="PROMO", priority=3)])
    d = rs.decide(text_normalised="PROMO", keyword="PROMO", role=None, groups=frozenset(),
                  local_time=NOON)
    assert [t.argument for t in d.tags] == ["promo", "any"]
    assert d.rule is not None and d.rule.name == "ans"
    d = rs.decide(text_normalised="HELP", keyword="HELP", role=None, groups=frozenset(),
                  local_time=NOON)
    assert [t.name for t in d.tags] == ["t2"] and d.rule is None


def test_reply_text_by_language() -> None:
    both = rule(argument={"en": "Open 8-18", "zh": "营业 8-18"})
    assert both.argument == "Open 8-18 || 营业 8-18"
    assert both.reply_text("en") == "Open 8-18"
    assert both.reply_text("zh") == "营业 8-18"
    assert rule(argument="Open || 营业").reply_text("zh") == "营业"
    only_zh = rule(argument=" || 营业")
    assert only_zh.reply_text("en") == "营业"
    assert rule(argument="Same").reply_text("zh") == "Same"


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "message"), [
    ({"action": "explode"}, "unknown action"),
    ({"action": "command", "argument": "FLY"}, "unknown command 'FLY'"),
    ({"action": "command", "argument": ""}, "needs the command code"),
    ({"action": "reply", "argument": ""}, "needs a reply text"),
    ({"action": "reply", "argument": " || "}, "needs a reply text"),
    ({"action": "reply", "argument": {"fr": "x"}}, "en and zh"),
    ({"window": "25:00-06:00"}, "not a time HH:MM"),
    ({"window_start": "8:00", "window_end": "09:00"}, "not a time HH:MM"),
    ({"window_start": "08:00"}, "both a start and an end"),
    ({"window": "08:00-08:00"}, "are equal"),
    ({"pattern": "([a-z"}, "bad regular expression"),
    ({"role": "king"}, "unknown role"),
    ({"action": "tag", "argument": "two words"}, "tag"),
    ({"action": "forward", "argument": ""}, "needs a target"),
    ({"keyword": "TWO WORDS"}, "contains a space"),
    ({"priority": "high"}, "not an integer"),
    ({"colour": "red"}, "unknown field"),
    ({"name": ""}, "without a name"),
])
def test_validation_errors(data: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"name": "bad", "action": "reply", "argument": "x"}
    base.update(data)
    with pytest.raises(RuleError, match=message):
        validate_rule(base, known_commands=KNOWN)


def test_command_rule_accepts_known_code_any_case() -> None:
    r = validate_rule({"name": "menu", "keyword": "MENU", "action": "command",
                       "argument": "help"}, known_commands=KNOWN)
    assert r.argument == "HELP"


def test_load_yaml_reports_rule_and_duplicates(tmp_path: Path) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text("rules:\n  - {name: a, action: reply, argument: x}\n"
                 "  - {name: b, action: reply, argument: x, pattern: '('}\n", "utf-8")
    with pytest.raises(RuleError, match=r"rule #2: rule 'b': bad regular expression"):
        load_yaml(f)
    f.write_text("rules:\n  - {name: a, action: reply, argument: x}\n"
                 "  - {name: a, action: reply, argument: y}\n", "utf-8")
    with pytest.raises(RuleError, match="used twice"):
        load_yaml(f)


def test_shipped_defaults_are_valid_and_shadow_no_command() -> None:
    from commands.registry import REGISTRY

    shipped = load_yaml(default_rules_path(), known_commands=KNOWN | set(REGISTRY.specs))
    assert any(r.action == "reply" and r.enabled for r in shipped)
    command_words = {w.casefold() for s in REGISTRY.specs.values() for w in (s.code, *s.aliases)}
    # Also protocol.md's whole table, whichever commands are registered yet.
    command_words |= {w.casefold() for w in PROTOCOL_KEYWORDS.split()}
    for r in shipped:
        if r.action != "command":
            assert not set(r.keywords) & command_words, r.name
        assert r.pattern is None or r.keywords, f"{r.name}: a bare pattern may shadow commands"
    hours = RuleSet(shipped).match(text_normalised="营业时间", keyword="营业时间", role=None,
                                   groups=frozenset(), local_time=NOON)
    assert hours is not None and "08:00" in hours.reply_text("zh")


# ---------------------------------------------------------------------------------------------
# Store (SQLite and PostgreSQL)
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def db(db_url: str) -> Any:
    s = Store.open(db_url)
    try:
        yield s
    finally:
        asyncio.run(s.close())


def _write_yaml(tmp_path: Path, *names: str) -> Path:
    f = tmp_path / "rules.yaml"
    f.write_text("rules:\n" + "".join(
        f"  - {{name: {n}, keyword: {n.upper()}, action: reply, argument: 'x || 吗'}}\n"
        for n in names), "utf-8")
    return f


def test_seed_only_on_first_start(db: Store, tmp_path: Path) -> None:
    f = _write_yaml(tmp_path, "one", "two")
    assert db.run(lambda c: seed_from_yaml(c, f, now=NOW, known_commands=KNOWN)) == 2
    assert db.run(lambda c: seed_from_yaml(c, _write_yaml(tmp_path, "three"), now=NOW)) == 0
    names = db.run(lambda c: [r.name for r in rules_from_db(c)])
    assert sorted(names) == ["one", "two"]
    assert db.run(get_version) is not None
    # An operator who deleted every rule does not get the defaults back on restart.
    db.run(lambda c: delete_rule(c, "one") and delete_rule(c, "two"))
    assert db.run(lambda c: seed_from_yaml(c, f, now=NOW)) == 0
    assert db.run(rules_from_db) == []


def test_seed_shipped_defaults(db: Store) -> None:
    n = db.run(lambda c: seed_from_yaml(c, now=NOW, known_commands=KNOWN))
    assert n == len(load_yaml(default_rules_path(), known_commands=KNOWN)) > 0
    loaded = db.run(lambda c: rules_from_db(c, strict=True, known_commands=KNOWN))
    assert {r.name for r in loaded} >= {"faq-hours", "faq-contact"}
    hours = next(r for r in loaded if r.name == "faq-hours")
    assert "营业时间" in hours.keywords and hours.reply_text("zh").startswith("服务时间")


def test_save_round_trips_every_field(db: Store) -> None:
    r = rule(name="full", priority=7, keyword=["A", "乙"], pattern=r"\d+", role="retailer",
             group="north", window="22:00-06:00", enabled=False)
    rid = db.run(lambda c: save_rule(c, r, NOW))
    (back,) = db.run(rules_from_db)
    assert back.id == rid
    assert back.to_row() == r.to_row()
    assert back.window_start == time(22, 0)


def test_version_bump_reloads_cache(db: Store) -> None:
    clock = [0.0]
    cache = RuleCache(check_interval=5, clock=lambda: clock[0], known_commands=KNOWN)
    db.run(lambda c: save_rule(c, rule(name="a", keyword="A"), NOW))
    first = db.run(cache.get)
    assert [r.name for r in first] == ["a"] and cache.reloads == 1

    # Another instance (or the admin API) changes the rules and bumps the version.
    db.run(lambda c: c.execute(rules.insert().values(
        name="b", priority=1, keyword="B", action="reply", argument="b", enabled=True,
        updated_at=NOW)))
    db.run(bump_version)
    clock[0] = 1.0
    assert db.run(cache.get) is first  # not looked at yet: at most every 5 s
    clock[0] = 6.0
    second = db.run(cache.get)
    assert [r.name for r in second] == ["b", "a"] and cache.reloads == 2
    clock[0] = 12.0
    assert db.run(cache.get) is second  # looked, version unchanged: no reload
    assert cache.reloads == 2

    db.run(lambda c: save_rule(c, rule(name="a", keyword="A", enabled=False), NOW))
    cache.invalidate()  # on demand
    third = db.run(cache.get)
    assert not next(r for r in third if r.name == "a").enabled


def test_bump_version_increments(db: Store) -> None:
    assert db.run(get_version) is None
    db.run(bump_version)
    db.run(bump_version)
    assert db.run(get_version) == "2"


def test_bad_row_is_skipped_not_fatal(db: Store) -> None:
    db.run(lambda c: c.execute(rules.insert().values(
        name="broken", priority=1, pattern="(", action="reply", argument="x", enabled=True,
        updated_at=NOW)))
    db.run(lambda c: save_rule(c, rule(name="fine", keyword="F"), NOW))
    assert [r.name for r in db.run(rules_from_db)] == ["fine"]
    with pytest.raises(RuleError, match="bad regular expression"):
        db.run(lambda c: rules_from_db(c, strict=True))


def _mo(conn: sa.Connection) -> int:
    return int(conn.execute(inbound_messages.insert().values(
        connection="smsc1", dedup_key="k1", source_addr="8613800000001", dest_addr="10690",
        text="CRM hello", data_coding=0, esm_class=0, short_message=b"CRM hello",
        received_at=NOW, status="received")).inserted_primary_key[0])


def test_record_forward_writes_pending_row(db: Store) -> None:
    mo_id = db.run(_mo)
    fid = db.run(lambda c: record_forward(c, mo_id, "crm", NOW))
    row = db.run(lambda c: c.execute(sa.select(forwards).where(forwards.c.id == fid))
                 .mappings().one())
    assert (row["mo_id"], row["target"], row["status"]) == (mo_id, "crm", "pending")
    assert row["delivered_at"] is None and row["created_at"] == NOW


def test_apply_tag_is_idempotent(db: Store) -> None:
    assert db.run(lambda c: apply_tag(c, "8613800000001", "promo", NOW)) is True
    assert db.run(lambda c: apply_tag(c, "8613800000001", "promo", NOW)) is False
    assert db.run(lambda c: apply_tag(c, "8613800000001", "vip", NOW)) is True
    rows = db.run(lambda c: c.execute(sa.select(phone_tags.c.phone, phone_tags.c.tag)
                                      .order_by(phone_tags.c.tag)).all())
    assert [tuple(r) for r in rows] == [("8613800000001", "promo"), ("8613800000001", "vip")]


def test_sender_profile_unknown_number(db: Store) -> None:
    assert db.run(lambda c: sender_profile(c, "8619999999999")) == (None, frozenset())


def test_rule_reply_helper() -> None:
    r = rule(argument="Open || 营业")
    assert (rule_reply(r, "en"), rule_reply(r, "zh")) == ("Open", "营业")


async def test_cache_current_reads_through_the_store(db_url: str) -> None:
    s = Store.open(db_url)
    try:
        clock = [0.0]
        cache = RuleCache(check_interval=5, clock=lambda: clock[0], known_commands=KNOWN)
        await s.write(lambda c: save_rule(c, rule(name="a", keyword="A"), NOW))
        first = await cache.current(s)
        assert [r.name for r in first] == ["a"]
        await s.write(lambda c: save_rule(c, rule(name="b", keyword="B"), NOW))
        assert await cache.current(s) is first  # within the interval: no I/O
        clock[0] = 5.0
        assert [r.name for r in await cache.current(s)] == ["a", "b"]
    finally:
        await s.close()
