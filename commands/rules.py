"""The rule engine: operator rules evaluated before the built-in commands.

Rules live in the ``rules`` table, are seeded from ``commands/rules.yaml`` at first start
(only while the table is empty) and are ordered by ``priority`` (lower first), then id.

A rule *matches* when every condition it sets holds (unset conditions are ignored):

- ``keyword``: the message's keyword, case-insensitively. The column may list alternatives
  separated by ``|`` (``HOURS|营业时间|YYSJ``). A Chinese keyword also matches when the text
  starts with it, since Chinese senders rarely type a separator (protocol.md).
- ``pattern``: ``re.search`` on the normalised text (compiled once; a bad regex is refused
  when the rule is validated, i.e. at load and at save).
- ``role`` / ``group_name``: the sender's account role, or a group the account belongs to.
- ``window_start``-``window_end``: local time ``HH:MM``, start inclusive, end exclusive; a
  window may wrap past midnight (``22:00``-``06:00``).

A rule *acts* in one of four ways (``action`` and its ``argument``):

- ``command``: run the built-in command named by the argument (``HELP``) on the message.
- ``reply``: reply with the argument's text: ``English text || 中文文本``, the half in the
  language of the keyword used (either half may be empty: the other is used).
- ``tag``: tag the sender with the argument (``promo-2024``). Tag rules do not stop the
  evaluation: every matching tag rule applies, and the message then goes on to the first
  matching rule of another kind, or to the built-in commands (see ``RuleSet.decide``).
- ``forward``: hand the message to the upstream application named by the argument. Until the
  SMPP server side exists it is stored as a pending forward (``record_forward``).
- ``webhook``: POST the message to the webhook subscription named by the argument (its URL,
  secret, form and reply mode: gateway/webhooks/); the callback is written to the durable
  outbox in the MO's own transaction (``record_webhook``).

A rule may name a ``service_number`` (``10690`` or a sub-code ``1069088``): it then only
matches MOs sent to that number (gateway/numbers.py); unset, it matches every number.

A message no rule takes and no built-in command understands gets ``ERR E01`` and stays in
the store for operators.

Rules change while running: every writer of rules calls ``bump_version`` in its
transaction; each ``RuleCache`` checks the ``settings`` row ``rules_version`` at most every
few seconds (or when told to) and reloads the whole rule set when it moved.
"""

from __future__ import annotations

import logging
import re
import threading
import time as _time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection, Row

from commands.normalize import is_cjk
from store.domain import accounts as account_store
from store.fastsql import FastStatement
from store.models import (
    ROLES,
    RULE_ACTIONS,
    forwards,
    group_members,
    groups,
    phone_tags,
    rules,
    settings,
)

if TYPE_CHECKING:
    from store.store import Store

log = logging.getLogger("smsgw.rules")

VERSION_KEY = "rules_version"
REPLY_SEPARATOR = "||"
DEFAULT_CHECK_INTERVAL = 5.0  # seconds between looks at rules_version

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_TAG = re.compile(r"^[\w.:-]{1,64}$")
_NAME = re.compile(r"^[\w.:-]{1,64}$")
_FIELDS = frozenset({
    "id", "name", "priority", "keyword", "pattern", "role", "group", "group_name", "window",
    "window_start", "window_end", "action", "argument", "enabled", "updated_at",
    "service_number",
})
MAX_REPLY = 1000  # characters; an FAQ answer longer than ~6 SMS parts is a mistake


def default_rules_path() -> Path:
    return Path(str(resources.files("commands").joinpath("rules.yaml")))


class RuleError(ValueError):
    """A rule that cannot be used; the message names the rule and the field."""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    priority: int
    action: str  # one of RULE_ACTIONS
    argument: str = ""
    keywords: tuple[str, ...] = ()  # casefolded alternatives
    pattern: str | None = None
    role: str | None = None
    group: str | None = None
    window_start: time | None = None
    window_end: time | None = None
    enabled: bool = True
    id: int | None = None
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    service_number: str | None = None  # only MOs to this number; None: any

    @property
    def keyword(self) -> str | None:
        """The ``keyword`` column's form: alternatives joined by ``|``."""
        return "|".join(self.keywords) or None

    def matches(self, *, text_normalised: str, keyword: str | None, role: str | None,
                groups: frozenset[str], local_time: time, number: str | None = None) -> bool:
        if not self.enabled:
            return False
        if self.service_number is not None and number != self.service_number:
            return False
        if self.keywords and not self._keyword_matches(text_normalised, keyword):
            return False
        if self.regex is not None and self.regex.search(text_normalised) is None:
            return False
        if self.role is not None and role != self.role:
            return False
        if self.group is not None and self.group not in groups:
            return False
        return self._in_window(local_time)

    def _keyword_matches(self, text: str, keyword: str | None) -> bool:
        said = keyword.casefold() if keyword else None
        folded = text.casefold()
        for word in self.keywords:
            if word == said:
                return True
            # A Chinese keyword runs straight into its arguments ("营业时间?" or "营业时间几点").
            if is_cjk(word[0]) and folded.startswith(word):
                return True
        return False

    def _in_window(self, t: time) -> bool:
        start, end = self.window_start, self.window_end
        if start is None or end is None:
            return True
        t = t.replace(second=0, microsecond=0, tzinfo=None)
        if start < end:
            return start <= t < end
        return t >= start or t < end  # wraps past midnight

    def reply_text(self, lang: str) -> str:
        """The reply for a 'reply' rule in ``lang`` ("en" / "zh")."""
        en, zh = split_reply(self.argument)
        if lang == "zh":
            return zh or en
        return en or zh

    def to_row(self) -> dict[str, Any]:
        """Column values for the ``rules`` table (without id and updated_at)."""
        return {
            "name": self.name, "priority": self.priority, "keyword": self.keyword,
            "pattern": self.pattern, "role": self.role, "group_name": self.group,
            "window_start": _fmt_hhmm(self.window_start),
            "window_end": _fmt_hhmm(self.window_end),
            "action": self.action, "argument": self.argument, "enabled": self.enabled,
            "service_number": self.service_number,
        }


def rule_reply(rule: Rule, lang: str) -> str:
    """The reply text of a 'reply' rule in ``lang`` (same as ``rule.reply_text(lang)``)."""
    return rule.reply_text(lang)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules say about one message: tags to apply, then at most one action rule."""

    tags: tuple[Rule, ...]
    rule: Rule | None  # a 'command', 'reply' or 'forward' rule; None: built-ins decide


class RuleSet:
    """An immutable, ordered set of rules. Pure: matching does no I/O."""

    def __init__(self, items: Iterable[Rule] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(sorted(
            items, key=lambda r: (r.priority, r.id if r.id is not None else 1 << 62, r.name)))

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def match(self, *, text_normalised: str, keyword: str | None, role: str | None,
              groups: frozenset[str], local_time: time, number: str | None = None
              ) -> Rule | None:
        """The first enabled rule (any action) whose conditions all hold."""
        for rule in self.rules:
            if rule.matches(text_normalised=text_normalised, keyword=keyword, role=role,
                            groups=groups, local_time=local_time, number=number):
                return rule
        return None

    def decide(self, *, text_normalised: str, keyword: str | None, role: str | None,
               groups: frozenset[str], local_time: time) -> Decision:
        """Every matching tag rule, and the first matching rule of another kind.

        This is what message handling uses: tag rules annotate the sender without taking the
        message away from the command (or reply / forward rule) that answers it.
        """
        tags: list[Rule] = []
        for rule in self.rules:
            if not rule.matches(text_normalised=text_normalised, keyword=keyword, role=role,
                                groups=groups, local_time=local_time):
                continue
            if rule.action == "tag":
                tags.append(rule)
                continue
            return Decision(tuple(tags), rule)
        return Decision(tuple(tags), None)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def split_reply(argument: str) -> tuple[str, str]:
    """``"en || zh"`` → ``("en", "zh")``; text without ``||`` serves both languages."""
    if REPLY_SEPARATOR not in argument:
        text = argument.strip()
        return text, text
    en, _, zh = argument.partition(REPLY_SEPARATOR)
    return en.strip(), zh.strip()


def _parse_hhmm(value: Any, name: str, what: str) -> time | None:
    if value is None or value == "":
        return None
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 22:00 as the sexagesimal integer 1320.
        value = f"{value // 60:02d}:{value % 60:02d}" if 0 <= value < 24 * 60 else str(value)
    m = _HHMM.match(str(value).strip())
    if not m:
        raise RuleError(f"rule {name!r}: {what} {value!r} is not a time HH:MM (00:00-23:59)")
    return time(int(m.group(1)), int(m.group(2)))


def _fmt_hhmm(t: time | None) -> str | None:
    return None if t is None else f"{t.hour:02d}:{t.minute:02d}"


def _opt_str(data: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = data.get(key)
        if value is not None:
            text = str(value).strip()
            return text or None
    return None


def _known_commands() -> frozenset[str]:
    from commands.registry import REGISTRY

    return frozenset(REGISTRY.specs)


def validate_rule(data: Mapping[str, Any], *,
                  known_commands: Collection[str] | None = None,
                  known_roles: Collection[str] = ROLES) -> Rule:
    """Check a rule given as a mapping (a YAML entry, a table row, an API body) → `Rule`.

    Raises `RuleError` naming the rule and what is wrong. ``known_commands`` are the codes a
    'command' rule may run (default: the command registry's).
    """
    if not isinstance(data, Mapping):
        raise RuleError(f"a rule must be a mapping, not {type(data).__name__}")
    raw_name = data.get("name")
    name = str(raw_name).strip() if raw_name is not None else ""
    if not name:
        raise RuleError("rule without a name")
    if not _NAME.match(name):
        raise RuleError(f"rule {name!r}: name must be 1-64 letters, digits, '_', '-', '.', ':'")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise RuleError(f"rule {name!r}: unknown field(s) {', '.join(map(str, unknown))}")

    priority = data.get("priority", 100)
    if isinstance(priority, bool) or not isinstance(priority, int):
        try:
            priority = int(str(priority).strip())
        except ValueError:
            raise RuleError(f"rule {name!r}: priority {priority!r} is not an integer") from None

    action = str(data.get("action") or "").strip().lower()
    if action not in RULE_ACTIONS:
        raise RuleError(f"rule {name!r}: unknown action {data.get('action')!r} "
                        f"(one of {', '.join(RULE_ACTIONS)})")

    # keyword: a string (alternatives split on '|') or a list of strings.
    raw_kw = data.get("keyword")
    words: list[str] = []
    if isinstance(raw_kw, list | tuple):
        words = [str(w) for w in raw_kw]
    elif raw_kw is not None:
        words = str(raw_kw).split("|")
    keywords: list[str] = []
    for word in words:
        w = word.strip().casefold()
        if not w:
            raise RuleError(f"rule {name!r}: empty keyword")
        if any(c.isspace() for c in w):
            raise RuleError(f"rule {name!r}: keyword {word.strip()!r} contains a space")
        if w not in keywords:
            keywords.append(w)
    if len("|".join(keywords)) > 64:
        raise RuleError(f"rule {name!r}: keywords longer than 64 characters in all")

    pattern = _opt_str(data, "pattern")
    regex = None
    if pattern is not None:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise RuleError(f"rule {name!r}: bad regular expression {pattern!r}: {exc}") from None

    role = _opt_str(data, "role")
    if role is not None:
        role = role.lower()
        if role not in known_roles:
            raise RuleError(f"rule {name!r}: unknown role {role!r} "
                            f"(one of {', '.join(known_roles)})")
    group = _opt_str(data, "group", "group_name")
    if group is not None and len(group) > 64:
        raise RuleError(f"rule {name!r}: group name longer than 64 characters")

    start_raw, end_raw = data.get("window_start"), data.get("window_end")
    window = data.get("window")
    if window is not None and str(window).strip():
        if start_raw is not None or end_raw is not None:
            raise RuleError(f"rule {name!r}: give window or window_start/window_end, not both")
        parts = str(window).replace(" ", "").split("-")
        if len(parts) != 2:
            raise RuleError(f"rule {name!r}: window {window!r} is not HH:MM-HH:MM")
        start_raw, end_raw = parts
    start = _parse_hhmm(start_raw, name, "window_start")
    end = _parse_hhmm(end_raw, name, "window_end")
    if (start is None) != (end is None):
        raise RuleError(f"rule {name!r}: a window needs both a start and an end")
    if start is not None and start == end:
        raise RuleError(f"rule {name!r}: window start and end are equal (omit the window for "
                        "all day)")

    argument = _argument(name, action, data.get("argument"), known_commands)

    enabled = data.get("enabled", True)
    if isinstance(enabled, str):
        enabled = enabled.strip().lower() not in ("0", "false", "no", "off", "")
    rule_id = data.get("id")
    number = _opt_str(data, "service_number")
    if number is not None and not (number.isascii() and number.isdigit() and len(number) <= 32):
        raise RuleError(f"rule {name!r}: service_number {number!r} must be digits (e.g. "
                        "'10690' or the sub-code '1069088'; quote it in YAML)")
    return Rule(name=name, priority=priority, action=action, argument=argument,
                keywords=tuple(keywords), pattern=pattern, role=role, group=group,
                window_start=start, window_end=end, enabled=bool(enabled),
                id=int(rule_id) if rule_id is not None else None, regex=regex,
                service_number=number)


def _argument(name: str, action: str, raw: Any,
              known_commands: Collection[str] | None) -> str:
    if action == "reply":
        if isinstance(raw, Mapping):
            extra = sorted(set(map(str, raw)) - {"en", "zh"})
            if extra:
                raise RuleError(f"rule {name!r}: reply languages are en and zh, not "
                                f"{', '.join(extra)}")
            en = str(raw.get("en") or "").strip()
            zh = str(raw.get("zh") or "").strip()
        else:
            en, zh = split_reply(str(raw or ""))
        if not en and not zh:
            raise RuleError(f"rule {name!r}: a reply rule needs a reply text")
        if REPLY_SEPARATOR in en or REPLY_SEPARATOR in zh:
            raise RuleError(f"rule {name!r}: reply text may contain {REPLY_SEPARATOR!r} once, "
                            "between the English and the Chinese text")
        if max(len(en), len(zh)) > MAX_REPLY:
            raise RuleError(f"rule {name!r}: reply longer than {MAX_REPLY} characters")
        return en if en == zh else f"{en} {REPLY_SEPARATOR} {zh}".strip()
    text = str(raw or "").strip()
    if action == "command":
        code = text.upper()
        known = frozenset(c.upper() for c in (
            known_commands if known_commands is not None else _known_commands()))
        if not code:
            raise RuleError(f"rule {name!r}: a command rule needs the command code")
        if code not in known:
            raise RuleError(f"rule {name!r}: unknown command {text!r} "
                            f"(one of {', '.join(sorted(known))})")
        return code
    if action == "tag":
        if not _TAG.match(text):
            raise RuleError(f"rule {name!r}: tag {text!r} must be 1-64 letters, digits, "
                            "'_', '-', '.', ':'")
        return text
    if action == "webhook":
        if not _NAME.match(text):
            raise RuleError(f"rule {name!r}: a webhook rule needs the name of a webhook "
                            "subscription (POST /webhooks/subscriptions), e.g. 'crm'")
        return text
    # forward
    if not text:
        raise RuleError(f"rule {name!r}: a forward rule needs a target (the upstream "
                        "application's name)")
    if len(text) > 255:
        raise RuleError(f"rule {name!r}: forward target longer than 255 characters")
    return text


def load_yaml(path: str | Path, *, known_commands: Collection[str] | None = None
              ) -> list[Rule]:
    """Read and validate a rules file: ``rules:`` followed by a list of rule mappings."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from None
    items = data.get("rules") if isinstance(data, dict) else data
    if items is None:
        return []
    if not isinstance(items, list):
        raise RuleError(f"{path}: expected a list of rules under 'rules:'")
    out: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(items, 1):
        try:
            rule = validate_rule(item, known_commands=known_commands)
        except RuleError as exc:
            raise RuleError(f"{path}: rule #{i}: {exc}") from None
        if rule.name in seen:
            raise RuleError(f"{path}: rule name {rule.name!r} used twice")
        seen.add(rule.name)
        out.append(rule)
    return out


# ---------------------------------------------------------------------------------------------
# Store
# ---------------------------------------------------------------------------------------------

def rules_from_db(conn: Connection, *, strict: bool = False,
                  known_commands: Collection[str] | None = None) -> list[Rule]:
    """Every rule row as a `Rule`. A row that no longer validates (edited by hand, or naming a
    command that was removed) is skipped with an error logged, or raises when ``strict``."""
    out: list[Rule] = []
    for row in conn.execute(sa.select(rules).order_by(rules.c.priority, rules.c.id)).mappings():
        try:
            out.append(validate_rule(
                {k: v for k, v in row.items() if k != "updated_at"},
                known_commands=known_commands))
        except RuleError as exc:
            if strict:
                raise
            log.error("rule row %s ignored: %s", row["id"], exc)
    return out


def save_rule(conn: Connection, rule: Rule, now: datetime) -> int:
    """Insert the rule, or update the one with its id (or, without id, its name); bumps the
    rules version so every running instance picks the change up. Returns the id."""
    values = {**rule.to_row(), "updated_at": now}
    if rule.id is not None:
        done = conn.execute(rules.update().where(rules.c.id == rule.id).values(**values))
        if done.rowcount == 0:
            raise RuleError(f"rule id {rule.id} does not exist")
        rule_id = rule.id
    else:
        found = conn.execute(sa.select(rules.c.id).where(rules.c.name == rule.name)).scalar()
        if found is not None:
            conn.execute(rules.update().where(rules.c.id == found).values(**values))
            rule_id = int(found)
        else:
            rule_id = int(conn.execute(rules.insert().values(**values)).inserted_primary_key[0])
    bump_version(conn)
    return rule_id


def delete_rule(conn: Connection, name: str) -> bool:
    done = conn.execute(rules.delete().where(rules.c.name == name))
    if done.rowcount:
        bump_version(conn)
    return bool(done.rowcount)


def seed_from_yaml(conn: Connection, path: str | Path | None = None, *, now: datetime,
                   known_commands: Collection[str] | None = None) -> int:
    """First start: insert the YAML rules when the rules table is empty. Returns how many.

    "First start" is an empty table that never had rules: once any rule was written, the
    ``rules_version`` setting exists, so an operator who deleted every rule does not get the
    defaults back on the next restart. Two instances starting at once: the loser's insert
    hits the unique rule name, is rolled back to a savepoint, and it seeds nothing.
    """
    if conn.execute(sa.select(sa.func.count()).select_from(rules)).scalar_one():
        return 0
    if get_version(conn) is not None:
        return 0
    items = load_yaml(path or default_rules_path(), known_commands=known_commands)
    if not items:
        return 0
    try:
        with conn.begin_nested():
            conn.execute(rules.insert(), [{**r.to_row(), "updated_at": now} for r in items])
    except sa.exc.IntegrityError:
        log.info("rules were seeded concurrently by another instance")
        return 0
    bump_version(conn)
    log.info("seeded %d rules from %s", len(items), path or default_rules_path())
    return len(items)


def get_version(conn: Connection) -> str | None:
    return conn.execute(
        sa.select(settings.c.value).where(settings.c.key == VERSION_KEY)).scalar()


def bump_version(conn: Connection) -> None:
    """Mark the rules changed. Call in the same transaction as the change.

    An atomic increment (not read-then-write): two concurrent writers always leave two
    distinct versions behind, so no cache can see the first bump and miss the second.
    """
    updated = conn.execute(
        settings.update().where(settings.c.key == VERSION_KEY).values(
            value=sa.cast(sa.cast(settings.c.value, sa.Integer) + 1, sa.String)))
    if updated.rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(settings.insert().values(key=VERSION_KEY, value="1"))
    except sa.exc.IntegrityError:  # inserted concurrently: increment that row instead
        conn.execute(
            settings.update().where(settings.c.key == VERSION_KEY).values(
                value=sa.cast(sa.cast(settings.c.value, sa.Integer) + 1, sa.String)))


class RuleCache:
    """The current `RuleSet`, reloaded when ``rules_version`` changes.

    ``get(conn)`` looks at the version at most every ``check_interval`` seconds (one indexed
    primary-key read), and reloads only when it moved; ``invalidate()`` makes the next
    ``get`` look at once (an instance that just saved a rule calls it). Thread-safe: the
    store's writer thread and the API may both ask.
    """

    def __init__(self, *, check_interval: float = DEFAULT_CHECK_INTERVAL,
                 clock: Callable[[], float] = _time.monotonic,
                 known_commands: Collection[str] | None = None) -> None:
        self.check_interval = check_interval
        self._clock = clock
        self._known_commands = known_commands
        self._lock = threading.Lock()
        self._ruleset = RuleSet()
        self._version: str | None = None
        self._loaded = False
        self._checked_at = 0.0
        self.reloads = 0

    @property
    def version(self) -> str | None:
        return self._version

    def invalidate(self) -> None:
        with self._lock:
            self._checked_at = float("-inf")

    def get(self, conn: Connection, *, force: bool = False) -> RuleSet:
        now = self._clock()
        with self._lock:
            if not force and self._loaded and now - self._checked_at < self.check_interval:
                return self._ruleset
            version = get_version(conn)
            self._checked_at = now
            if force or not self._loaded or version != self._version:
                self._ruleset = RuleSet(rules_from_db(conn,
                                                      known_commands=self._known_commands))
                self._version = version
                self._loaded = True
                self.reloads += 1
                log.info("rules loaded: %d (version %s)", len(self._ruleset), version)
            return self._ruleset

    async def current(self, store: Store) -> RuleSet:
        """``get`` for async code: no I/O at all while the check interval has not passed;
        otherwise one version read on the store's read pool (never the writer thread)."""
        with self._lock:
            if self._loaded and self._clock() - self._checked_at < self.check_interval:
                return self._ruleset
        return await store.read(self.get)


# ---------------------------------------------------------------------------------------------
# Effects and the sender's profile
# ---------------------------------------------------------------------------------------------

def apply_tag(conn: Connection, phone: str, tag: str, now: datetime) -> bool:
    """Tag a phone; True when the tag is new (tagging twice is harmless)."""
    exists = conn.execute(sa.select(phone_tags.c.id).where(
        phone_tags.c.phone == phone, phone_tags.c.tag == tag)).scalar()
    if exists is not None:
        return False
    try:
        with conn.begin_nested():
            conn.execute(phone_tags.insert().values(phone=phone, tag=tag, created_at=now))
    except sa.exc.IntegrityError:  # tagged concurrently by another instance
        return False
    return True


def record_forward(conn: Connection, mo_id: int, target: str, now: datetime) -> int:
    """Store an MO as forwarded-pending to ``target``; the SMPP server side delivers it."""
    return int(conn.execute(forwards.insert().values(
        mo_id=mo_id, target=target, status="pending", created_at=now)).inserted_primary_key[0])


def record_webhook(conn: Connection, mo_id: int, subscription: str, *, phone: str, text: str,
                   now: datetime) -> int | None:
    """Owe the MO to the webhook subscription named ``subscription``, in this transaction
    (the durable outbox: store/webhooks.py). None when no enabled subscription has that name
    (logged; the MO is still recorded as forwarded, an operator sees the rule's target)."""
    from store import webhooks

    return webhooks.owe_mo(conn, mo_id, subscription, phone=phone, text=text, now=now)


# Run for every MO from a registered sender (store/fastsql.py: compiled once).
_GROUP_NAMES = FastStatement(
    sa.select(groups.c.name)
    .select_from(group_members.join(groups, group_members.c.group_id == groups.c.id))
    .where(group_members.c.account_id == sa.bindparam("b_account")))


def sender_profile(conn: Connection, phone: str) -> tuple[str | None, frozenset[str]]:
    """The sender's role and group names (``(None, frozenset())`` for unknown numbers)."""
    return account_profile(conn, account_store.by_phone(conn, phone))


def account_profile(conn: Connection, account: Row | None) -> tuple[str | None, frozenset[str]]:
    """An active account's role and group names (``(None, frozenset())`` for None)."""
    if account is None:
        return None, frozenset()
    names = _GROUP_NAMES.all(conn, {"b_account": account.id})
    return account.role, frozenset(r.name for r in names)
