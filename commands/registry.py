"""The command registry: codes, aliases and formats, and keyword matching.

Keywords are case-insensitive; a Chinese keyword needs no separator after it, and keywords
match longest first (protocol.md), so `订货123456` is ORD and `CHD` wins over `CH`.
"""

from __future__ import annotations

from dataclasses import dataclass

from commands.normalize import is_cjk


@dataclass(frozen=True, slots=True)
class CommandSpec:
    code: str
    aliases: tuple[str, ...]  # Chinese words and pinyin initials
    syntax: str  # format shown by HELP <cmd>


@dataclass(frozen=True, slots=True)
class Match:
    spec: CommandSpec
    keyword: str  # as written by the sender
    lang: str  # "zh" for a Chinese keyword, else "en"
    rest: str  # the arguments, normalised


class Registry:
    def __init__(self, specs: list[CommandSpec]):
        self.specs = {s.code: s for s in specs}
        keys: list[tuple[str, CommandSpec]] = []
        for spec in specs:
            for word in (spec.code, *spec.aliases):
                keys.append((word.upper(), spec))
        # Longest first, so a longer keyword is never shadowed by its own prefix.
        self._keys = sorted(keys, key=lambda kv: -len(kv[0]))

    def get(self, code: str) -> CommandSpec | None:
        return self.specs.get(code.upper())

    def match(self, text: str) -> Match | None:
        """Find the keyword at the start of normalised text."""
        upper = text.upper()
        for word, spec in self._keys:
            if not upper.startswith(word):
                continue
            after = text[len(word):]
            cjk = is_cjk(word[0])
            # A Latin keyword must end at a separator or a digit-free boundary ("HELPME" is
            # not HELP); a Chinese one may run straight into its arguments.
            if not cjk and after and not after[0].isspace() and not after[0].isdigit() \
                    and word != "?":
                continue
            lang = "zh" if cjk else "en"
            return Match(spec, text[:len(word)], lang, after.strip())
        return None


HELP = CommandSpec("HELP", ("帮助", "BZ", "?"), "HELP [cmd]")

# Issue 2 ships HELP; the rest of protocol.md's table arrives with the command issue and is
# listed here only so HELP can describe the whole protocol once they land.
BUILTIN: list[CommandSpec] = [HELP]

REGISTRY = Registry(BUILTIN)
