"""Reply templates, read-only: they ship as YAML in commands/templates/<lang>/ and change with
a release (overriding them at runtime is not offered yet)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path

from commands.templates import LANGS, table
from gateway.api.deps import Caller
from gateway.api.errors import not_found

router = APIRouter(prefix="/templates", tags=["templates"])

Lang = Literal["en", "zh"]


@router.get("")
async def list_languages(_: Caller) -> dict[str, list[str]]:
    return {"langs": list(LANGS)}


@router.get("/{lang}")
async def templates(lang: Lang, _: Caller) -> dict[str, str]:
    """Every template of a language, key → text (Python str.format placeholders)."""
    return table(lang)


@router.get("/{lang}/{key}")
async def template(lang: Lang, key: Annotated[str, Path(max_length=128)], _: Caller
                   ) -> dict[str, str]:
    found = table(lang).get(key)
    if found is None:
        raise not_found("template", f"{lang}/{key}")
    return {"lang": lang, "key": key, "text": found}
