"""Rules, reply templates and the "try it" box.

Rules are saved through the admin API's own route functions (gateway/api/routes/rules.py:
the engine's validation, the rules version bump, the audit), so a rule saved here is checked
and applied exactly as one PUT by API. Reply templates ship with a release; an operator
overrides or resets one through the API's own template routes (the same checks and audit).
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from commands.rules import RULE_ACTIONS
from commands.templates import LANGS, OVERRIDES, current, table
from common.phones import InvalidPhoneNumber, canonical
from gateway.api.errors import ApiError
from gateway.api.routes import rules as rules_api
from gateway.api.routes import templates as templates_api
from gateway.console.auth import check_csrf, require
from gateway.console.i18n import translator
from gateway.console.pages import Me, Token, back, gw_of, render
from gateway.console.tryit import try_text
from store.db import StoreUnavailable

router = APIRouter(prefix="/ui", include_in_schema=False)

# The form's fields, in the order shown; empty ones are left out of the rule.
RULE_FIELDS = ("name", "priority", "keyword", "pattern", "role", "group", "window_start",
               "window_end", "action", "argument")


async def _rules_page(request: Request, me: Any, status: int = 200, **ctx: Any
                      ) -> HTMLResponse:
    listed = await rules_api.list_rules(gw_of(request), me.actor(request))
    ctx.setdefault("form", {})
    ctx.setdefault("tried", None)
    return render(request, "rules.html", me, status, page="rules", rules=listed["rules"],
                  version=listed["version"], actions=RULE_ACTIONS, **ctx)


@router.get("/rules", response_class=HTMLResponse)
async def rules_page(request: Request, me: Me, edit: str | None = None) -> HTMLResponse:
    form: dict[str, Any] = {}
    if edit:
        try:
            form = await rules_api.get_rule(edit, gw_of(request), me.actor(request))
        except ApiError as exc:
            return await _rules_page(request, me, exc.status, error=exc.message)
        form = {**form, "group": form.get("group_name")}
    return await _rules_page(request, me, form=form, editing=bool(edit))


def rule_body(form: dict[str, str]) -> dict[str, Any]:
    """The API's rule body from the form: blank fields omitted, the checkbox as a bool."""
    body: dict[str, Any] = {k: form[k].strip() for k in RULE_FIELDS
                            if (form.get(k) or "").strip()}
    body["enabled"] = form.get("enabled") == "on"
    return body


@router.post("/rules", response_class=HTMLResponse, response_model=None)
async def save_rule(request: Request, me: Me, token: Token) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    form = {k: str(v) for k, v in (await request.form()).items()}
    body = rule_body(form)
    gw, actor = gw_of(request), me.actor(request)
    try:
        if form.get("editing"):
            saved = await rules_api.put_rule(name=body.get("name", ""), gw=gw, actor=actor,
                                              body=body)
        else:
            saved = await rules_api.create_rule(gw=gw, actor=actor, body=body)
    except ApiError as exc:  # the engine's own message: names the rule and the field
        return await _rules_page(request, me, 422 if exc.status == 422 else exc.status,
                                 form=form, editing=bool(form.get("editing")),
                                 error=exc.message)
    return back("/ui/rules", m="rule_saved", id=saved["name"])


@router.post("/rules/{name}/delete", response_model=None)
async def delete_rule(request: Request, me: Me, token: Token, name: str) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    try:
        await rules_api.remove_rule(name, gw_of(request), me.actor(request))
    except ApiError as exc:
        return await _rules_page(request, me, exc.status, error=exc.message)
    return back("/ui/rules", m="rule_deleted", id=name)


@router.post("/rules/try", response_class=HTMLResponse)
async def try_it(request: Request, me: Me, token: Token,
                 phone: Annotated[str, Form(max_length=32)],
                 text: Annotated[str, Form(max_length=2000)]) -> HTMLResponse:
    """What this phone texting this text would get, run for real and rolled back. Any
    logged-in user may try (it changes nothing); htmx swaps the result into the page."""
    check_csrf(me, token)
    try:
        number = canonical(phone)
    except InvalidPhoneNumber as exc:
        return render(request, "_tryit.html", me, 200, tried=None, try_error=str(exc))
    try:
        result = await try_text(gw_of(request).store, number, text)
    except (StoreUnavailable, sa.exc.OperationalError) as exc:  # busy, or cut off at its limit
        return render(request, "_tryit.html", me, 200, tried=None,
                      try_error=translator(me.lang)("try_failed", e=str(exc).splitlines()[0]))
    return render(request, "_tryit.html", me, tried=result, try_error=None)


async def _templates_page(request: Request, me: Any, q: str | None = None,
                          status: int = 200, **ctx: Any) -> HTMLResponse:
    await OVERRIDES.refresh(gw_of(request).store)
    tables = {lang: current(lang) for lang in LANGS}
    keys = sorted({k for t in tables.values() for k in t})
    if q:
        needle = q.lower()
        keys = [k for k in keys if needle in k.lower()
                or any(needle in t.get(k, "").lower() for t in tables.values())]
    overridden = {(lang, k) for lang in LANGS for k in keys if tables[lang].get(k) !=
                  table(lang).get(k)}
    ctx.setdefault("form", None)
    return render(request, "templates.html", me, status, page="templates", keys=keys,
                  tables=tables, langs=LANGS, q=q or "", overridden=overridden, **ctx)


@router.get("/templates", response_class=HTMLResponse)
async def templates_page(request: Request, me: Me, q: str | None = None,
                         edit: str | None = None) -> HTMLResponse:
    """The templates in use; ``edit=<lang>/<key>`` opens the form for one."""
    form = None
    if edit:
        lang, _, key = edit.partition("/")
        if lang not in LANGS or key not in table(lang):
            return await _templates_page(request, me, q, 404, error=f"no template {edit}")
        form = await gw_of(request).store.read(lambda c: templates_api._view(c, lang, key))
    return await _templates_page(request, me, q, form=form)


@router.post("/templates/{lang}/{key}", response_class=HTMLResponse, response_model=None)
async def save_template(request: Request, me: Me, token: Token, lang: str, key: str,
                        text: Annotated[str, Form(max_length=2000)]) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    gw, actor = gw_of(request), me.actor(request)
    try:
        if lang not in LANGS:
            raise ApiError(404, "not_found", f"no template {lang}/{key}")
        await templates_api.put_template(lang, key, templates_api.TemplateIn(text=text), gw,
                                         actor)  # type: ignore[arg-type]
    except ApiError as exc:  # names the placeholder, plural or word to fix
        form = {"lang": lang, "key": key, "text": text,
                "default": table(lang).get(key, "") if lang in LANGS else ""}
        return await _templates_page(request, me, None, exc.status, form=form,
                                     error=exc.message)
    return back("/ui/templates", m="template_saved", id=f"{lang}/{key}")


@router.post("/templates/{lang}/{key}/reset", response_model=None)
async def reset_template(request: Request, me: Me, token: Token, lang: str, key: str
                         ) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    try:
        if lang not in LANGS:
            raise ApiError(404, "not_found", f"no template {lang}/{key}")
        await templates_api.reset_template(lang, key, gw_of(request),  # type: ignore[arg-type]
                                           me.actor(request))
    except ApiError as exc:
        return await _templates_page(request, me, None, exc.status, error=exc.message)
    return back("/ui/templates", m="template_reset", id=f"{lang}/{key}")
