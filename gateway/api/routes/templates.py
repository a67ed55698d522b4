"""Reply templates: the defaults ship as YAML in commands/templates/<lang>/; an operator may
override one (PUT, checked by commands.templates.check_override) and reset it (DELETE).
Every instance applies an edit within seconds, without a restart (templates version)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from commands.templates import LANGS, OVERRIDES, TemplateError, check_override, current, table
from gateway.api.deps import Caller, Gw
from gateway.api.errors import ApiError, not_found
from store import template_overrides as stored

router = APIRouter(prefix="/templates", tags=["templates"])

Lang = Literal["en", "zh"]
Key = Annotated[str, Path(max_length=128)]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000,
                      description="str.format placeholders: exactly the default's; "
                                  "{n:item|items} for counted nouns")


@router.get("")
async def list_languages(_: Caller) -> dict[str, list[str]]:
    return {"langs": list(LANGS)}


@router.get("/{lang}")
async def templates(lang: Lang, gw: Gw, _: Caller) -> dict[str, str]:
    """Every template of a language as replies use it, key → text (overrides applied)."""
    await OVERRIDES.refresh(gw.store)
    return current(lang)


def _view(conn: Connection, lang: str, key: str) -> dict[str, Any]:
    default = table(lang).get(key)
    if default is None:
        raise not_found("template", f"{lang}/{key}")
    override = stored.get(conn, lang, key)
    return {"lang": lang, "key": key,
            "text": override["text"] if override else default, "default": default,
            "overridden": override is not None,
            "updated_at": override["updated_at"] if override else None,
            "updated_by": override["updated_by"] if override else None}


@router.get("/{lang}/{key}")
async def template(lang: Lang, key: Key, gw: Gw, _: Caller) -> dict[str, Any]:
    """The text in use, the shipped default, and who overrode it when."""
    return await gw.store.read(lambda c: _view(c, lang, key))


@router.put("/{lang}/{key}")
async def put_template(lang: Lang, key: Key, body: TemplateIn, gw: Gw, actor: Caller
                       ) -> dict[str, Any]:
    """Override a template. 404 for an unknown key; 422 names what is wrong: a placeholder
    missing or unknown to the default, a plural without its forms, English in Chinese."""
    if key not in table(lang):
        raise not_found("template", f"{lang}/{key}")
    try:
        text = check_override(lang, key, body.text)
    except TemplateError as exc:
        raise ApiError(422, "invalid_template", f"{lang}/{key}: {exc}") from None

    def run(c: Connection) -> dict[str, Any]:
        before = _view(c, lang, key)
        stored.put(c, lang, key, text, now=datetime.now(UTC), by=actor.name[:64])
        after = _view(c, lang, key)
        actor.record(c, "template", f"{lang}/{key}", before=before, after=after)
        return after

    return await _applied(gw, await gw.store.write(run))


@router.delete("/{lang}/{key}")
async def reset_template(lang: Lang, key: Key, gw: Gw, actor: Caller) -> dict[str, Any]:
    """Back to the shipped default (a template not overridden: nothing changes)."""

    def run(c: Connection) -> dict[str, Any]:
        before = _view(c, lang, key)
        if stored.delete(c, lang, key):
            actor.record(c, "template", f"{lang}/{key}", before=before,
                         after=_view(c, lang, key))
        return _view(c, lang, key)

    return await _applied(gw, await gw.store.write(run))


async def _applied(gw: Any, result: dict[str, Any]) -> dict[str, Any]:
    # This instance at once; the others at their next version check.
    OVERRIDES.invalidate()
    await OVERRIDES.refresh(gw.store)
    return result
