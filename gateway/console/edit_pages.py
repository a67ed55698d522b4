"""Edit an account, a product or a topic: the form posts to the admin API's own PATCH route
functions (gateway/api/routes/{accounts,products,topics}.py) with the API's own body model,
so the checks, the audit and the error messages are exactly the API's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError

from gateway.api.errors import ApiError
from gateway.api.routes import accounts as accounts_api
from gateway.api.routes import products as products_api
from gateway.api.routes import topics as topics_api
from gateway.console.auth import User, check_csrf, require
from gateway.console.pages import Me, back, gw_of, render

router = APIRouter(prefix="/ui", include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str = "text"  # text / number / bool / select
    options: tuple[str, ...] = ()
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Editable:
    """One kind of thing the console edits: its form fields and the API functions."""

    fields: tuple[Field, ...]
    model: type[BaseModel]  # the API's PATCH body
    get: Callable[..., Awaitable[dict[str, Any]]]
    update: Callable[..., Awaitable[dict[str, Any]]]

    def key(self, raw: str) -> Any:
        return int(raw) if self is EDITABLE["accounts"] else raw


EDITABLE: dict[str, Editable] = {
    "accounts": Editable(
        (Field("name"), Field("role", "select", ("retailer", "subscriber", "manager")),
         Field("phone", hint="8613800000001"), Field("lang", "select", ("zh", "en")),
         Field("region"), Field("route"), Field("manager_id", "number", hint="account id"),
         Field("sms_ordering", "bool"), Field("order_days", hint="1,4 (empty: every day)"),
         Field("order_window_start", hint="08:00"), Field("order_window_end", hint="18:00"),
         Field("notify_window_start", hint="08:00"), Field("notify_window_end", hint="21:00"),
         Field("active", "bool")),
        accounts_api.AccountPatch, accounts_api.get_account, accounts_api.update_account),
    "products": Editable(
        (Field("name_zh"), Field("name_en"), Field("price_cents", "number", hint="1250 = 12.50"),
         Field("max_qty", "number"), Field("active", "bool")),
        products_api.ProductPatch, products_api.get_product, products_api.update_product),
    "topics": Editable(
        (Field("name_zh"), Field("name_en"), Field("public", "bool"), Field("active", "bool")),
        topics_api.TopicPatch, topics_api.get_topic, topics_api.update_topic),
}

# Text columns that may be emptied (NULL); other blank text fields are sent as "" so the
# API's own check says what is wrong ("name: at least 1 character").
NULLABLE = frozenset({"phone", "region", "route", "manager_id", "order_window_start",
                      "order_window_end", "notify_window_start", "notify_window_end"})


def patch_body(spec: Editable, form: dict[str, str]) -> dict[str, Any]:
    """The PATCH body from a submitted form: every field of the form, checkboxes as bools."""
    body: dict[str, Any] = {}
    for f in spec.fields:
        raw = (form.get(f.name) or "").strip()
        if f.kind == "bool":
            body[f.name] = form.get(f.name) == "on"
        elif raw == "" and (f.name in NULLABLE or f.kind == "number"):
            body[f.name] = None
        else:
            body[f.name] = raw
    return body


def validation_message(exc: ValidationError) -> str:
    """The API's 422 wording (gateway/api/errors.py): ``field: reason`` for each error."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"]
                     else e["msg"] for e in exc.errors())


def _kind(kind: str) -> Editable | None:
    return EDITABLE.get(kind)


async def _form(request: Request, me: User, kind: str, key: str, values: dict[str, Any],
                status: int = 200, error: str | None = None) -> HTMLResponse:
    return render(request, "edit.html", me, status, page=kind, kind=kind, key=key,
                  fields=EDITABLE[kind].fields, values=values, error=error)


@router.get("/{kind}/{key}/edit", response_class=HTMLResponse, response_model=None)
async def edit_form(request: Request, me: Me, kind: str, key: str) -> Response:
    spec = _kind(kind)
    if spec is None:
        return render(request, "error.html", me, 404, error=f"no page {kind}")
    try:
        found = await spec.get(spec.key(key), gw_of(request), me.actor(request))
    except (ApiError, ValueError) as exc:
        status, msg = (exc.status, exc.message) if isinstance(exc, ApiError) else (404, str(exc))
        return render(request, "error.html", me, status, error=msg)
    return await _form(request, me, kind, key, found)


@router.post("/{kind}/{key}/edit", response_class=HTMLResponse, response_model=None)
async def save(request: Request, me: Me, kind: str, key: str) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    check_csrf(me, form.get("csrf"))
    require(me, "operator")
    spec = _kind(kind)
    if spec is None:
        return render(request, "error.html", me, 404, error=f"no page {kind}")
    body = patch_body(spec, form)
    try:
        patch = spec.model.model_validate(body)
        await spec.update(spec.key(key), patch, gw_of(request), me.actor(request))
    except ValidationError as exc:
        return await _form(request, me, kind, key, body, 422, validation_message(exc))
    except ApiError as exc:
        return await _form(request, me, kind, key, body, exc.status, exc.message)
    return back(f"/ui/{kind}", m="saved", id=key)
