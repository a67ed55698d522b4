"""One handler per command; `dispatch` checks who may use it (commands/roles.yaml) first.

A handler takes (ctx, parsed, account) — `account` is the sender's active account, or None
for an unregistered number on a public command — and returns the Outcome. Handlers write
through store.domain within the caller's transaction and never run the PIN KDF themselves
(ctx.pin_ok, see commands.pins.precheck). HELP lives in commands/help.py, not here.
"""

from __future__ import annotations

from collections.abc import Callable

from commands.context import Context, Outcome
from commands.handlers import account, collection, ordering, queries, subscriptions
from commands.handlers.common import command_name, fail
from commands.parsed import Parsed
from commands.roles import Roles, load_roles

# (ctx, parsed, sender account or None) -> Outcome
Handler = Callable[..., Outcome]

HANDLERS: dict[str, Handler] = {
    "REG": account.reg,
    "PIN": account.pin,
    "CHG": account.chg,
    "CFM": account.cfm,
    "BAL": account.bal,
    "ORD": ordering.ord_,
    "MOD": ordering.mod,
    "CAN": ordering.can,
    "RPT": ordering.rpt,
    "OQ": ordering.oq,
    "SAL": collection.sal,
    "STK": collection.stk,
    "SN": collection.sn,
    "Q": queries.q,
    "SUB": subscriptions.sub,
    "UNSUB": subscriptions.unsub,
}


def dispatch(ctx: Context, parsed: Parsed, roles: Roles | None = None) -> Outcome:
    """Route a parsed command to its handler.

    E03 when the sender has no active account and the command is not public, or when its
    role may not use the command. Raises KeyError for a command without a handler here
    (HELP, or a parser/registry bug), which the engine must not route to us.
    """
    handler = HANDLERS[parsed.command]
    roles = roles or load_roles()
    sender = ctx.sender()
    if not roles.is_public(parsed.command):
        if sender is None:
            return fail(parsed, "E03", "e03_not_registered")
        if not roles.allows(sender.role, parsed.command):
            return fail(parsed, "E03", "e03_not_allowed", cmd=command_name(parsed))
    return handler(ctx, parsed, sender)
