"""Turns one inbound SMS into a reply. Sans-IO: no store, no SMPP."""

from __future__ import annotations

from commands.context import Outcome
from commands.normalize import is_cjk, normalize
from commands.registry import REGISTRY, Registry
from commands.templates import render


def _guess_lang(text: str) -> str:
    return "zh" if any(is_cjk(c) for c in text) else "en"


def _error(lang: str, code: str, what: str, cmd: str = "") -> Outcome:
    reply = render(lang, "err", code=code, what=what, cmd=cmd).replace("  ", " ").strip()
    return Outcome(reply, lang, None, code)


def handle(text: str, registry: Registry = REGISTRY) -> Outcome:
    norm = normalize(text)
    if not norm:
        lang = _guess_lang(text)
        return _error(lang, "E01", render(lang, "err_empty"))
    match = registry.match(norm)
    if match is None:
        lang = _guess_lang(norm)
        word = norm.split(" ", 1)[0][:20]
        return _error(lang, "E01", render(lang, "err_unknown_command", word=word))
    if match.spec.code == "HELP":
        return _help(match.lang, match.rest, registry)
    raise NotImplementedError(match.spec.code)  # every registered command has a handler


def _help(lang: str, rest: str, registry: Registry) -> Outcome:
    if rest:
        word = rest.split(" ", 1)[0]
        found = registry.match(word)
        if found is None:
            return _error(lang, "E01", render(lang, "err_unknown_help", word=word[:20]), "")
        return Outcome(render(lang, "help_one", code=found.spec.code, syntax=found.spec.syntax),
                       lang, "HELP")
    if lang == "zh":
        names = " ".join(f"{s.aliases[0]}({s.code})" for s in registry.specs.values())
    else:
        names = " ".join(registry.specs)
    return Outcome(render(lang, "help", commands=names), lang, "HELP")
