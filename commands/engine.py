"""From one inbound SMS to an `Outcome`: rules first, then the built-in command.

Two steps, because a not yet upgraded (scrypt) PIN hash must not be checked inside the single
writer transaction:
  1. `prepare(text, today)` — pure: normalise and parse. The caller then computes
     `ctx.pin_ok` / `ctx.pin_rehash` with `commands.pins.check` on a read connection.
  2. `process(ctx, prepared, rules)` — inside the store transaction that also queues the
     reply and marks the MO processed: rule engine, then the handler.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from commands import handlers
from commands.clock import local_time
from commands.context import Context, Outcome
from commands.engagement import replies as engagement_replies
from commands.help import help_reply
from commands.normalize import normalize
from commands.parse import parse, render_parse_error
from commands.parsed import Parsed, ParseError
from commands.rules import (
    Rule,
    RuleSet,
    account_profile,
    apply_tag,
    record_forward,
    record_webhook,
    rule_reply,
)
from commands.secrets import mask

# Commands that change nothing: a redelivery of one is simply answered again (afresh), since
# the earlier answer may be stale (BAL, then REG, then BAL again).
READ_ONLY_COMMANDS = frozenset({"HELP", "BAL", "OQ", "Q"})
# Opt-out: applied whatever the rate limit or the storm guard says (protocol.md).
OPT_OUT_COMMANDS = frozenset({"UNSUB"})


@dataclass(frozen=True, slots=True)
class Prepared:
    text: str  # as received
    normalised: str
    result: Parsed | ParseError

    @property
    def keyword(self) -> str | None:
        if isinstance(self.result, Parsed):
            return self.result.keyword
        first = self.normalised.split(" ", 1)[0]
        return first or None

    @property
    def lang(self) -> str:
        return self.result.lang

    @property
    def command(self) -> str | None:
        return self.result.command if isinstance(self.result, Parsed) else None

    @property
    def read_only(self) -> bool:
        return self.command in READ_ONLY_COMMANDS

    @property
    def opt_out(self) -> bool:
        """STOP, TD, 退订 and UNSUB … (all parse as UNSUB)."""
        return self.command in OPT_OUT_COMMANDS


def prepare(text: str, today: date) -> Prepared:
    return Prepared(text, normalize(text), parse(text, today=today))


def process(ctx: Context, prepared: Prepared, rules: RuleSet) -> Outcome:
    role, groups = account_profile(ctx.conn, ctx.sender())
    rule = rules.match(text_normalised=prepared.normalised, keyword=prepared.keyword,
                       role=role, groups=groups, local_time=local_time(ctx.now),
                       number=ctx.number)
    result = prepared.result
    ctx.lang = result.lang
    if rule is not None:
        applied = _apply_rule(ctx, prepared, rule)
        if applied is not None:
            return applied
        if rule.action == "command":
            rest = _arguments(prepared, rule)
            result = parse(f"{rule.argument} {rest}".strip(), today=ctx.today)
            ctx.lang = result.lang if isinstance(result, ParseError) else prepared.lang
    if (isinstance(result, Parsed) and ctx.number_commands is not None
            and result.command not in ctx.number_commands):
        # Not offered on this service number (gateway/numbers.py): as if unknown there.
        result = ParseError("E01", result.lang, None, "err_unknown_command",
                            {"word": prepared.keyword or result.command})
    # Hook (issue 13): a reply to an open poll / survey question, or a STOP ending them.
    engaged = engagement_replies.route(ctx, result, prepared.normalised)
    if engaged is not None:
        return engaged
    if isinstance(result, ParseError):
        if result.code == "E01" and ctx.number_lang is not None:
            result = replace(result, lang=ctx.number_lang)
        return Outcome(render_parse_error(result), result.lang, None, result.code)
    if result.command == "HELP":
        return help_reply(ctx, result)
    return handlers.dispatch(ctx, result)


def _arguments(prepared: Prepared, rule: Rule) -> str:
    """The message without the rule's keyword (what a 'command' rule passes on).

    A Chinese keyword may run straight into its arguments (订烟123456 …), so strip the
    keyword itself when the rule names one; otherwise drop the first word.
    """
    text = prepared.normalised
    if rule.keyword and text.upper().startswith(rule.keyword.upper()):
        return text[len(rule.keyword):].strip()
    parts = text.split(" ", 1)
    return parts[1] if len(parts) > 1 else ""


def _apply_rule(ctx: Context, prepared: Prepared, rule: Rule) -> Outcome | None:
    """Terminal rule actions return an Outcome; 'tag' and 'command' fall through."""
    if rule.action == "reply":
        return Outcome(rule_reply(rule, ctx.lang), ctx.lang, f"RULE:{rule.name}")
    if rule.action == "forward":
        if ctx.mo_id is not None:
            record_forward(ctx.conn, ctx.mo_id, rule.argument, ctx.now)
        return Outcome(None, ctx.lang, f"FORWARD:{rule.argument}")
    if rule.action == "webhook":
        if ctx.mo_id is not None:
            # The stored callback body is masked like the stored MO: no PIN in clear.
            record_webhook(ctx.conn, ctx.mo_id, rule.argument, phone=ctx.phone,
                           text=mask(prepared.text), now=ctx.now)
        return Outcome(None, ctx.lang, f"FORWARD:webhook:{rule.argument}")
    if rule.action == "tag":
        apply_tag(ctx.conn, ctx.phone, rule.argument, ctx.now)
    return None
