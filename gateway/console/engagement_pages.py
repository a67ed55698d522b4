"""Campaigns, polls and surveys (issue 13) in the console: a list, a create form per kind, and
a detail page whose results refresh themselves. Every change and every read of results goes
through the admin API's own route functions (gateway/api/routes/engagement.py) with the
API's own body models, so the checks, the error messages and the audit are exactly the API's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Connection

from gateway.api.errors import ApiError
from gateway.api.routes import engagement as engagement_api
from gateway.console import charts
from gateway.console.auth import User, check_csrf, require
from gateway.console.edit_pages import validation_message
from gateway.console.i18n import translator
from gateway.console.pages import Me, _target, back, gw_of, render
from store import engagement as st

router = APIRouter(prefix="/ui/engagements", include_in_schema=False)

KINDS = ("poll", "survey", "campaign")
MODELS: dict[str, type[BaseModel]] = {"poll": engagement_api.PollIn,
                                      "survey": engagement_api.SurveyIn,
                                      "campaign": engagement_api.CampaignIn}
QUESTION_ROWS = 5  # blank question rows on the survey form (an empty row is left out)
NOT_ANSWERED_SHOWN = 200  # phones listed on the page; the CSV / API has them all


def api(name: str) -> Callable[..., Awaitable[Any]]:
    """One of the API's engagement route functions by its route name (``start_poll``…):
    they are made per kind in a loop, so they are found on the router, not imported."""
    for route in engagement_api.router.routes:
        if getattr(route, "name", None) == name:
            return route.endpoint  # type: ignore[attr-defined, no-any-return]
    raise LookupError(name)


# ---------------------------------------------------------------------------------------------
# The form as the API's body
# ---------------------------------------------------------------------------------------------


def _options(raw: str, sep: str) -> list[dict[str, Any]]:
    """``label = KW1, KW2`` per option (options split by ``sep``): the API's Option."""
    out = []
    for item in raw.split(sep):
        label, _, words = item.partition("=")
        if label.strip():
            out.append({"label": label.strip(),
                        "keywords": [w.strip() for w in words.replace("，", ",").split(",")
                                     if w.strip()]})
    return out


def _int_or_none(raw: str) -> int | str | None:
    """Blank: None; anything else goes to the API as typed, so its check names the field."""
    raw = raw.strip()
    return None if raw == "" else int(raw) if raw.lstrip("-").isdigit() else raw


def _common(form: dict[str, str]) -> dict[str, Any]:
    return {"name": form.get("name", "").strip(), "goal": form.get("goal", "").strip() or None,
            "lang": form.get("lang", "zh"),
            "reply_window_minutes": _int_or_none(form.get("reply_window_minutes", ""))}


def _audience(form: dict[str, str]) -> dict[str, Any]:
    """A target (as a broadcast's) and/or open to anyone who texts the keyword."""
    kind = form.get("target_kind", "")
    return {"keyword": form.get("keyword", "").strip() or None,
            "target_kind": kind or None,
            "target": _target(kind, form.get("target", "")) if kind else None,
            "open_to_all": form.get("open_to_all") == "on"}


def _question(form: dict[str, str], i: int) -> dict[str, Any] | None:
    text = form.get(f"q{i}_text", "").strip()
    if not text:
        return None
    q: dict[str, Any] = {"id": form.get(f"q{i}_id", "").strip() or f"q{i}",
                         "type": form.get(f"q{i}_type", "text"), "text": text}
    if q["type"] == "choice":
        q["options"] = _options(form.get(f"q{i}_options", ""), ";")
    if q["type"] == "number":
        q["min"] = _int_or_none(form.get(f"q{i}_min", ""))
        q["max"] = _int_or_none(form.get(f"q{i}_max", ""))
    return q


def body_of(kind: str, form: dict[str, str]) -> dict[str, Any]:
    """The API's create body from a submitted form."""
    body = _common(form)
    if kind == "campaign":
        target_kind = form.get("target_kind", "")
        return {**body, "text": form.get("text", ""), "target_kind": target_kind,
                "target": _target(target_kind, form.get("target", ""))}
    body.update(_audience(form))
    if kind == "poll":
        body["poll"] = {"question": form.get("question", "").strip(),
                        "options": _options(form.get("options", ""), "\n"),
                        "counts": form.get("counts", "last"),
                        "confirm": form.get("confirm") == "on",
                        "free_text": form.get("free_text") == "on"}
    else:
        questions = [q for i in range(1, QUESTION_ROWS + 1) if (q := _question(form, i))]
        timeout = form.get("timeout_minutes", "").strip()
        body["survey"] = {"intro": form.get("intro", "").strip() or None,
                          "questions": questions, "final": form.get("final", "").strip(),
                          **({"timeout_minutes": timeout} if timeout else {})}
    return body


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def engagements(request: Request, me: Me) -> HTMLResponse:
    now = datetime.now(UTC)

    def run(c: Connection) -> list[dict[str, Any]]:
        rows = st.list_all(c)
        for r in rows:  # the response rate, as the results report it
            r["effect"] = st.effect(c, st.row(c, r["id"]), now)
        return rows

    rows = await gw_of(request).store.read(run)
    return render(request, "engagements.html", me, page="engagements", rows=rows)


def _form(request: Request, me: User, kind: str, values: dict[str, str], status: int = 200,
          error: str | None = None) -> HTMLResponse:
    return render(request, "engagement_new.html", me, status, page="engagements", kind=kind,
                  kinds=KINDS, f=values, rows=QUESTION_ROWS, error=error)


@router.get("/new", response_class=HTMLResponse)
async def new_form(request: Request, me: Me, kind: str = "poll") -> HTMLResponse:
    defaults = {"lang": me.lang, "counts": "last", "confirm": "on"}
    return _form(request, me, kind if kind in KINDS else "poll", defaults)


@router.post("/new/{kind}", response_class=HTMLResponse, response_model=None)
async def create(request: Request, me: Me, kind: str) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    check_csrf(me, form.get("csrf"))
    require(me, "operator")
    if kind not in KINDS:
        return render(request, "error.html", me, 404, error=f"no kind {kind}")
    try:
        body = MODELS[kind].model_validate(body_of(kind, form))
        created = await api(f"create_{kind}")(body, gw_of(request), me.actor(request))
    except ValidationError as exc:
        return _form(request, me, kind, form, 422, validation_message(exc))
    except ApiError as exc:
        return _form(request, me, kind, form, exc.status, exc.message)
    return back(f"/ui/engagements/{created['id']}", m="engagement_created", id=created["id"])


async def _one(request: Request, me: User, engagement_id: int) -> dict[str, Any] | None:
    found = await gw_of(request).store.read(lambda c: st.get(c, engagement_id))
    return None if found is None else await api(f"get_{found['kind']}")(
        engagement_id, gw_of(request), me.actor(request))


async def _results(request: Request, me: User, e: dict[str, Any]) -> dict[str, Any]:
    found = await api(f"{e['kind']}_results")(e["id"], gw_of(request), me.actor(request))
    t = translator(me.lang)
    chart = None
    if "tallies" in found:
        chart = charts.bar_chart([(f"{x['option']}. {x['label']}", x["votes"])
                                  for x in found["tallies"]], title=t("tallies"))
    return {"r": found, "chart": chart, "money": charts.money,
            "not_answered": found.get("not_answered", [])[:NOT_ANSWERED_SHOWN]}


@router.get("/{engagement_id}", response_class=HTMLResponse, response_model=None)
async def detail(request: Request, me: Me, engagement_id: int) -> Response:
    e = await _one(request, me, engagement_id)
    if e is None:
        return render(request, "error.html", me, 404, error=f"no engagement {engagement_id}")
    return render(request, "engagement.html", me, page="engagements", e=e,
                  **await _results(request, me, e))


@router.get("/{engagement_id}/results", response_class=HTMLResponse, response_model=None)
async def results_body(request: Request, me: Me, engagement_id: int) -> Response:
    """The self-refreshing part of the detail page (htmx, every 2 s)."""
    e = await _one(request, me, engagement_id)
    if e is None:
        return HTMLResponse("", status_code=404)
    return render(request, "_engagement_results.html", me, e=e,
                  **await _results(request, me, e))


@router.post("/{engagement_id}/{action}", response_class=HTMLResponse, response_model=None)
async def change(request: Request, me: Me, engagement_id: int, action: str) -> Response:
    form = await request.form()
    check_csrf(me, str(form.get("csrf") or ""))
    require(me, "operator")
    e = await _one(request, me, engagement_id)
    if e is None or action not in ("start", "pause", "close", "groups"):
        return render(request, "error.html", me, 404, error=f"no engagement {engagement_id}")
    try:
        if action == "groups":
            saved = await engagement_api.save_poll_groups(engagement_id, gw_of(request),
                                                          me.actor(request))
            return render(request, "engagement.html", me, page="engagements", e=e,
                          saved_groups=saved, **await _results(request, me, e))
        await api(f"{action}_{e['kind']}")(engagement_id, gw_of(request), me.actor(request))
    except ApiError as exc:
        return render(request, "engagement.html", me, exc.status, page="engagements", e=e,
                      error=exc.message, **await _results(request, me, e))
    return back(f"/ui/engagements/{engagement_id}", m=f"engagement_{action}",
                id=engagement_id)


@router.get("/{engagement_id}/export.csv", response_model=None)
async def export(request: Request, me: Me, engagement_id: int) -> Response:
    e = await _one(request, me, engagement_id)
    if e is None or e["kind"] == "campaign":
        return render(request, "error.html", me, 404, error=f"no export for {engagement_id}")
    resp: Response = await api(f"{e['kind']}_csv")(engagement_id, gw_of(request),
                                                   me.actor(request))
    return resp
