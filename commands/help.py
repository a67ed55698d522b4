"""HELP replies: the commands the sender may use, or one command's format with an example.

    help_reply(ctx, parsed) -> Outcome   the sender's own HELP (its role decides the list)
    help_text(lang, command, usable=None) -> str
        command: a code ("ORD") or None for the list; usable: the codes the sender may use
        (None: every command, as in docs/commands.md)

Who may use what is commands/roles.yaml: an unregistered number gets the public commands, a
registered one its role's commands too; a retailer without SMS ordering is not offered the
ordering commands (the handlers refuse them, commands/handlers/ordering.py). `HELP <cmd>` for
a command the sender may not use says so (and, unregistered, how to register) instead of
showing a format it cannot use.

English lists the codes, Chinese the Chinese keywords; both fit one SMS (160 GSM-7 / 70 UCS-2
characters). One command's reply is `help_cmd` (summary, format, example) when that fits one
SMS, else the shorter `help_one` (format and example); texts are in templates/<lang>/help.yaml.
"""

from __future__ import annotations

from collections.abc import Collection

from commands.context import Context, Outcome
from commands.parsed import Parsed
from commands.registry import REGISTRY, CommandSpec, Registry
from commands.roles import Roles, load_roles
from commands.templates import LANGS, render

_GSM_EXTENSION = frozenset("^{}\\[~]|")

# The commands commands/handlers/ordering.py refuses (E03) to an account without
# accounts.sms_ordering, whatever its role allows.
SMS_ORDERING_COMMANDS = frozenset({"ORD", "MOD", "CAN", "RPT"})


def fits_one_sms(text: str) -> bool:
    """160 GSM-7 septets (extension characters cost two), or 70 UCS-2 characters.

    Conservative: any non-ASCII character (or a backtick, not in GSM 03.38) means UCS-2.
    """
    if text.isascii() and "`" not in text:
        return len(text) + sum(ch in _GSM_EXTENSION for ch in text) <= 160
    return len(text) <= 70


def usable_commands(ctx: Context, roles: Roles | None = None) -> tuple[frozenset[str], bool]:
    """(the command codes the sender may use, whether it is registered)."""
    roles = roles or load_roles()
    sender = ctx.sender()
    if sender is None:
        return frozenset(roles.public), False
    role = roles.roles.get(sender.role)
    usable = set(roles.public) | (role.commands if role is not None else frozenset())
    if not sender.sms_ordering:
        usable -= SMS_ORDERING_COMMANDS
    return frozenset(usable), True


def help_reply(ctx: Context, parsed: Parsed, roles: Roles | None = None) -> Outcome:
    usable, registered = usable_commands(ctx, roles)
    text = help_text(parsed.lang, parsed.args.get("command"), usable=usable,
                     registered=registered)
    return Outcome(text, parsed.lang, "HELP")


def help_text(lang: str, command: str | None, registry: Registry = REGISTRY, *,
              usable: Collection[str] | None = None, registered: bool = True) -> str:
    lang = lang if lang in LANGS else "en"
    zh = lang == "zh"
    spec = registry.get(command) if command else None
    if spec is None:
        specs = [s for s in registry.specs.values() if usable is None or s.code in usable]
        names = " ".join(s.name_zh if zh else s.code for s in specs)
        return render(lang, "help", commands=names)
    if usable is not None and spec.code not in usable:
        key = "help_not_allowed" if registered else "help_register_first"
        return render(lang, key, code=spec.name_zh if zh else spec.code)
    return _format(lang, spec)


def _format(lang: str, spec: CommandSpec) -> str:
    zh = lang == "zh"
    values = {
        "code": spec.name_zh if zh else spec.code,
        "syntax": (spec.syntax_zh or spec.syntax) if zh else spec.syntax,
        "example": (spec.example_zh or spec.example) if zh else spec.example,
        "summary": (spec.summary_zh or spec.summary) if zh else spec.summary,
    }
    text = render(lang, "help_cmd", **values)
    if not fits_one_sms(text):
        text = render(lang, "help_one", **values)
    return text
