"""The console's pages. Every page reads through the store functions and every change goes
through the admin API's own route functions (called in-process with the user as Actor), so a
change made here is checked, audited and notified exactly as the same change by API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Connection

from common.phones import canonical
from gateway.api.common import decode_cursor, page
from gateway.api.errors import ApiError
from gateway.api.routes import accounts as accounts_api
from gateway.api.routes import broadcasts as broadcasts_api
from gateway.api.routes import connections as connections_api
from gateway.api.routes import groups as groups_api
from gateway.api.routes import messages as messages_api
from gateway.api.routes import orders as orders_api
from gateway.api.routes import products as products_api
from gateway.api.routes import topics as topics_api
from gateway.console import charts
from gateway.console.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_HOURS,
    Sessions,
    User,
    check_csrf,
    require,
)
from gateway.console.i18n import LANGS, from_accept_language, translator
from store import admin, users
from store.domain import accounts as account_repo

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
NAV = ("overview", "messages", "conversations", "orders", "broadcasts", "engagements",
       "accounts", "products", "topics", "groups", "rules", "templates", "data", "statistics",
       "audit", "phones", "users")
ADMIN_ONLY = frozenset({"users"})  # left out of the navigation of other roles
PAGE_SIZE = 100  # rows per page on the long lists (messages, accounts, audit)

router = APIRouter(prefix="/ui", include_in_schema=False)


def sessions(request: Request) -> Sessions:
    return request.app.state.console_sessions


async def current_user(request: Request) -> User:
    return await sessions(request).user(request)


Me = Annotated[User, Depends(current_user)]
Token = Annotated[str, Form(alias="csrf")]


def gw_of(request: Request) -> Any:
    return request.app.state.gateway


def render(request: Request, name: str, user: User | None, status: int = 200,
           **ctx: Any) -> HTMLResponse:
    lang = user.lang if user else ctx.pop("lang", "en")
    q = request.query_params
    flash = ctx.pop("flash", None)
    if flash is None and q.get("m"):
        flash = translator(lang)(q["m"], id=q.get("id", ""), n=q.get("n", ""))
    nav = [p for p in NAV if p not in ADMIN_ONLY or (user is not None and user.can("admin"))]
    return TEMPLATES.TemplateResponse(request, name, {
        "user": user, "t": translator(lang), "lang": lang, "nav": nav, "flash": flash,
        "error": ctx.pop("error", None), **ctx}, status_code=status)


def back(path: str, **query: Any) -> RedirectResponse:
    qs = urlencode({k: v for k, v in query.items() if v is not None})
    return RedirectResponse(f"{path}?{qs}" if qs else path, status_code=303)


def _source(request: Request) -> str:
    return request.client.host if request.client else "?"


# ---------------------------------------------------------------------------------------------
# Login, logout, own account
# ---------------------------------------------------------------------------------------------


def _login_page(request: Request, lang: str, error: str | None = None,
                status: int = 200) -> HTMLResponse:
    cookie, token = sessions(request).login_token()
    resp = render(request, "login.html", None, status=status, lang=lang, login_token=token,
                  error=error)
    resp.set_cookie(LOGIN_COOKIE, cookie, max_age=3600, httponly=True, samesite="strict",
                    path="/ui")
    return resp


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> HTMLResponse:
    return _login_page(request, from_accept_language(request.headers.get("accept-language")))


@router.post("/login", response_class=HTMLResponse, response_model=None)
async def login(request: Request, username: Annotated[str, Form(max_length=64)],
                password: Annotated[str, Form(max_length=256)], token: Token
                ) -> Response:
    lang = from_accept_language(request.headers.get("accept-language"))
    t = translator(lang)
    s = sessions(request)
    if not s.login_token_ok(request, token):
        return _login_page(request, lang, t("login_expired"), 403)
    row, wait = await s.login(_source(request), username, password)
    if row is None:
        msg = t("login_locked", s=wait) if wait else t("login_failed")
        return _login_page(request, lang, msg, 429 if wait else 401)
    resp = back("/ui/")
    resp.set_cookie(SESSION_COOKIE, s.session_cookie(row), max_age=SESSION_HOURS * 3600,
                    httponly=True, samesite="strict", path="/",
                    secure=request.url.scheme == "https")
    resp.delete_cookie(LOGIN_COOKIE, path="/ui")
    return resp


@router.post("/logout")
async def logout(request: Request, me: Me, token: Token) -> RedirectResponse:
    check_csrf(me, token)
    await gw_of(request).store.write(lambda c: users.end_sessions(c, me.id))
    resp = back("/ui/login")
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/me", response_class=HTMLResponse)
async def my_account(request: Request, me: Me) -> HTMLResponse:
    return render(request, "me.html", me, page="me")


@router.post("/me/password", response_class=HTMLResponse, response_model=None)
async def change_password(request: Request, me: Me, token: Token,
                          current: Annotated[str, Form(max_length=256)],
                          new: Annotated[str, Form(max_length=256)]) -> Response:
    import asyncio

    check_csrf(me, token)
    gw = gw_of(request)
    row = await gw.store.read(lambda c: users.get_by_name(c, me.username))
    if not await asyncio.to_thread(users.verify_password, current, row["password_hash"]):
        return render(request, "me.html", me, 400, page="me",
                      error=translator(me.lang)("login_failed"))
    try:
        users.check_password_rules(new)
    except users.UserError as exc:
        return render(request, "me.html", me, 400, page="me", error=str(exc))
    hashed = await asyncio.to_thread(users.hash_password, new)
    actor = me.actor(request)

    def run(c: Connection) -> None:
        before = users.get(c, me.id)
        users.set_password_hash(c, me.id, hashed, now=datetime.now(UTC))
        actor.record(c, "console_user", me.id, before=before, after=users.get(c, me.id))

    await gw.store.write(run)
    resp = back("/ui/login")
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.post("/me/lang")
async def change_lang(request: Request, me: Me, token: Token,
                      lang: Annotated[str, Form(max_length=4)]) -> RedirectResponse:
    check_csrf(me, token)
    if lang in LANGS:
        await gw_of(request).store.write(lambda c: users.set_lang(c, me.id, lang))
    return back(request.headers.get("referer", "/ui/").split("?")[0]
                if request.headers.get("referer", "").startswith(str(request.base_url))
                else "/ui/")


# ---------------------------------------------------------------------------------------------
# Overview
# ---------------------------------------------------------------------------------------------


async def _overview(request: Request, me: User) -> dict[str, Any]:
    gw = gw_of(request)
    actor = me.actor(request)
    conns = await connections_api.list_connections(gw, actor)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    since = now - timedelta(hours=3)

    def run(c: Connection) -> tuple[Any, ...]:
        return (admin.per_minute(c, since=since), admin.queue_depth(c),
                admin.statistics(c, since=now - timedelta(hours=24)))

    minutes, depth, stats = await gw.store.read(run)
    labels, mo, mt = [], [], []
    for i in range(181):
        key = f"{since + timedelta(minutes=i):%Y-%m-%d %H:%M}"
        labels.append(key[11:])
        mo.append(minutes.get(key, {}).get("in", 0))
        mt.append(minutes.get(key, {}).get("out", 0))
    t = translator(me.lang)
    chart = charts.line_chart(labels, {t("mo"): mo, t("mt"): mt}, title=t("traffic"))
    return {"connections": conns, "depth": depth, "chart": chart,
            "out_status": stats["by_status"]["out"],
            "failed_mo": stats["by_status"]["in"].get("failed", 0)}


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, me: Me) -> HTMLResponse:
    return render(request, "overview.html", me, page="overview", **await _overview(request, me))


@router.get("/overview/body", response_class=HTMLResponse)
async def overview_body(request: Request, me: Me) -> HTMLResponse:
    return render(request, "_overview_body.html", me, **await _overview(request, me))


# ---------------------------------------------------------------------------------------------
# Messages and conversations
# ---------------------------------------------------------------------------------------------


def _phone_or_none(raw: str | None) -> str | None:
    return canonical(raw) if raw and raw.strip() else None


def _time_or_none(raw: str | None) -> datetime | None:
    if not raw:
        return None
    parsed = datetime.fromisoformat(raw)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get("/messages", response_class=HTMLResponse)
async def messages(request: Request, me: Me, phone: str | None = None,
                   status: str | None = None, direction: str = "out",
                   since: str | None = None, until: str | None = None,
                   connection: str | None = None, broadcast: str | None = None,
                   cursor: str | None = None) -> HTMLResponse:
    """Search either direction; pages by the API's own cursor (older messages next)."""
    rows: list[dict[str, Any]] = []
    error = None
    next_cursor = None
    d = "in" if direction == "in" else "out"
    try:
        p, s, u = _phone_or_none(phone), _time_or_none(since), _time_or_none(until)
        b = int(broadcast) if broadcast and broadcast.strip() else None
        before = decode_cursor(f"messages-{d}", cursor)
        found = await gw_of(request).store.read(lambda c: admin.list_messages(
            c, direction=d, phone=p, status=status or None, since=s, until=u,
            connection=connection or None, broadcast_id=b, before_id=before,
            limit=PAGE_SIZE + 1))
        paged = page(f"messages-{d}", found, PAGE_SIZE)
        rows, next_cursor = paged.items, paged.next_cursor
    except ValueError as exc:
        error = str(exc)
    except ApiError as exc:
        error = exc.message
    q = {"phone": phone or "", "status": status or "", "direction": direction,
         "since": since or "", "until": until or "", "connection": connection or "",
         "broadcast": broadcast or ""}
    conns = [c["name"] for c in await connections_api.list_connections(gw_of(request),
                                                                       me.actor(request))]
    return render(request, "messages.html", me, page="messages", rows=rows, error=error, q=q,
                  next_cursor=next_cursor, connections=conns,
                  next_query=urlencode({**{k: v for k, v in q.items() if v},
                                        "cursor": next_cursor or ""}))


@router.get("/messages/{message_id}", response_class=HTMLResponse)
async def message(request: Request, me: Me, message_id: int) -> HTMLResponse:
    try:
        found = await messages_api.get(message_id, gw_of(request), me.actor(request))
    except ApiError as exc:
        return render(request, "error.html", me, exc.status, error=exc.message)
    return render(request, "message.html", me, page="messages", m=found)


@router.get("/conversations", response_class=HTMLResponse)
async def conversations(request: Request, me: Me, phone: str | None = None) -> HTMLResponse:
    items: list[dict[str, Any]] = []
    error = None
    account = None
    try:
        p = _phone_or_none(phone)
        if p:
            items = await gw_of(request).store.read(lambda c: admin.interactions(c, p))
            account = await gw_of(request).store.read(lambda c: account_repo.by_phone(c, p))
    except ValueError as exc:
        error = str(exc)
    return render(request, "conversation.html", me, page="conversations", items=items,
                  phone=phone or "", error=error, account=account)


@router.post("/conversations/send")
async def conversation_send(request: Request, me: Me, token: Token,
                            phone: Annotated[str, Form(max_length=32)],
                            text: Annotated[str, Form(max_length=2000)]) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    try:
        req = messages_api.SendRequest(to=phone, text=text)
        queued = await messages_api.send(req, gw_of(request), me.actor(request))
    except (ValueError, ApiError) as exc:
        return render(request, "error.html", me, 422, error=str(exc))
    return back("/ui/conversations", phone=canonical(phone), m="sent", id=queued.id)


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


@router.get("/orders", response_class=HTMLResponse)
async def orders(request: Request, me: Me, order: int | None = None) -> HTMLResponse:
    gw = gw_of(request)

    def run(c: Connection) -> tuple[Any, ...]:
        pending = (admin.list_orders(c, status="pending_review", limit=200)
                   + admin.list_orders(c, status="pending_funds", limit=200))
        recent = admin.list_orders(c, limit=50)
        return pending, recent

    pending, recent = await gw.store.read(run)
    detail = side = None
    if order is not None:
        try:
            detail = await orders_api.get_order(order, gw, me.actor(request))
        except ApiError as exc:
            return render(request, "error.html", me, exc.status, error=exc.message)

        def account(c: Connection) -> tuple[Any, ...]:
            acc = account_repo.by_id(c, detail["account_id"])
            return acc, admin.list_orders(c, account_id=detail["account_id"], limit=10)

        side = await gw.store.read(account)
    return render(request, "orders.html", me, page="orders", pending=pending, recent=recent,
                  detail=detail, side=side)


async def _review(request: Request, me: User, order_id: int, approve: bool,
                  reason: str | None) -> None:
    gw, actor = gw_of(request), me.actor(request)
    if approve:
        await orders_api.approve(order_id, gw, actor, None)
    else:
        await orders_api.reject(order_id, orders_api.Rejection(reason=reason or ""), gw, actor)


@router.post("/orders/{order_id}/approve")
async def approve_order(request: Request, me: Me, token: Token, order_id: int) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    try:
        await _review(request, me, order_id, True, None)
    except ApiError as exc:
        return render(request, "error.html", me, exc.status, error=exc.message)
    return back("/ui/orders", m="approved", id=order_id)


@router.post("/orders/{order_id}/reject")
async def reject_order(request: Request, me: Me, token: Token, order_id: int,
                       reason: Annotated[str, Form(min_length=1, max_length=500)]) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    try:
        await _review(request, me, order_id, False, reason)
    except ApiError as exc:
        return render(request, "error.html", me, exc.status, error=exc.message)
    return back("/ui/orders", m="rejected", id=order_id)


@router.post("/orders/bulk-approve", response_class=HTMLResponse, response_model=None)
async def bulk_approve(request: Request, me: Me, token: Token,
                       ids: Annotated[list[int] | None, Form()] = None) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    problems = []
    for order_id in ids or []:
        try:
            await _review(request, me, order_id, True, None)
        except ApiError as exc:
            problems.append(f"{order_id}: {exc.message}")
    if problems:
        return render(request, "error.html", me, 409, error="; ".join(problems))
    return back("/ui/orders", m="approved", id=", ".join(map(str, ids or [])))


# ---------------------------------------------------------------------------------------------
# Broadcasts
# ---------------------------------------------------------------------------------------------


def _target(kind: str, target: str) -> Any:
    """The form's one text box as the API's target: a segment is ``key=value`` pairs."""
    if kind == "segment":
        spec: dict[str, list[str]] = {}
        for pair in target.replace(";", ",").split(","):
            key, _, value = pair.partition("=")
            if key.strip():
                spec.setdefault(key.strip(), []).append(value.strip())
        return spec
    return target.strip()


def _cost(gw: Any, parts: int, recipients: int) -> str:
    from gateway.routing import specs_from_settings

    costs = [s.cost_millis for s in specs_from_settings(gw.settings)]
    return f"{min(costs or [0]) * parts * recipients / 1000:.2f}"


@router.get("/broadcasts", response_class=HTMLResponse)
async def broadcasts(request: Request, me: Me) -> HTMLResponse:
    rows = await broadcasts_api.list_broadcasts(gw_of(request), me.actor(request), limit=50)
    return render(request, "broadcasts.html", me, page="broadcasts", rows=rows)


@router.get("/broadcasts/progress", response_class=HTMLResponse)
async def broadcasts_progress(request: Request, me: Me) -> HTMLResponse:
    rows = await broadcasts_api.list_broadcasts(gw_of(request), me.actor(request), limit=50)
    return render(request, "_broadcast_rows.html", me, rows=rows)


@router.post("/broadcasts/preview", response_class=HTMLResponse)
async def broadcast_preview(request: Request, me: Me, token: Token,
                            target_kind: Annotated[str, Form()],
                            target: Annotated[str, Form(max_length=10000)],
                            text: Annotated[str, Form(max_length=2000)]) -> HTMLResponse:
    from gateway.mt_text import mt_text
    from gateway.notices.broadcasts import check_target
    from gateway.smpp.text import count_parts
    from store import notices as sn

    check_csrf(me, token)
    t = translator(me.lang)

    def run(c: Connection) -> tuple[int, int]:
        checked = check_target(c, target_kind, _target(target_kind, target))
        spec = sn.target_spec(target_kind, checked)  # the same shape create_broadcast stores
        found = sn.expand_recipients(c, target_kind, spec)
        return len(found), len(sn.opted_out_phones(c, [r.phone for r in found]))

    try:
        parts = count_parts(mt_text(text)) if text.strip() else 0
        n, opted = await gw_of(request).store.read(run)
    except ValueError as exc:
        return HTMLResponse(f'<p class="error">{_esc(str(exc))}</p>')
    msg = t("preview_result", n=n, o=opted, p=parts, c=_cost(gw_of(request), parts, n - opted))
    return HTMLResponse(f'<p class="ok" id="preview-result">{_esc(msg)}</p>')


def _esc(text: str) -> str:
    from html import escape

    return escape(text)


@router.post("/broadcasts", response_class=HTMLResponse, response_model=None)
async def create_broadcast(request: Request, me: Me, token: Token,
                           name: Annotated[str, Form(min_length=1, max_length=128)],
                           target_kind: Annotated[str, Form()],
                           target: Annotated[str, Form(max_length=10000)],
                           text: Annotated[str, Form(max_length=2000)],
                           schedule_at: Annotated[str, Form()] = "") -> Response:
    check_csrf(me, token)
    require(me, "operator")
    try:
        body = broadcasts_api.BroadcastIn(
            name=name, target_kind=target_kind, target=_target(target_kind, target), text=text,
            schedule_at=_time_or_none(schedule_at))
        created = await broadcasts_api.create_broadcast(body, gw_of(request), me.actor(request))
    except (ValueError, ApiError) as exc:
        message = exc.message if isinstance(exc, ApiError) else str(exc)
        rows = await broadcasts_api.list_broadcasts(gw_of(request), me.actor(request), limit=50)
        return render(request, "broadcasts.html", me, 422, page="broadcasts", rows=rows,
                      error=message)
    return back("/ui/broadcasts", m="broadcast_created", id=created["id"])


@router.post("/broadcasts/{broadcast_id}/cancel")
async def cancel_broadcast(request: Request, me: Me, token: Token,
                           broadcast_id: int) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    try:
        await broadcasts_api.cancel_broadcast(broadcast_id, gw_of(request), me.actor(request))
    except ApiError as exc:
        return render(request, "error.html", me, exc.status, error=exc.message)
    return back("/ui/broadcasts", m="cancelled")


# ---------------------------------------------------------------------------------------------
# Lists: accounts, products, topics, groups (with CSV export; accounts also import)
# ---------------------------------------------------------------------------------------------

BOM = "\ufeff"  # so spreadsheet programs read the CSV as UTF-8 (Chinese names)


def csv_download(rows: list[dict[str, Any]], columns: list[str], filename: str) -> Response:
    return Response(BOM + admin.rows_to_csv(rows, columns), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


async def _accounts_page(request: Request, me: User, q: str | None, cursor: str | None,
                         limit: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], str | None]:
    """One page of accounts and the cursor of the next (the API's own listing)."""
    found = await accounts_api.list_accounts(gw_of(request), me.actor(request), limit=limit,
                                             cursor=cursor, role=None, route=None, active=None,
                                             sms_ordering=None, phone=None, q=q or None)
    return found.items, found.next_cursor


async def _list(request: Request, me: User, kind: str, q: str | None) -> list[dict[str, Any]]:
    gw, actor = gw_of(request), me.actor(request)
    if kind == "accounts":  # everything, for the CSV export: page through like a client
        rows, cursor = await _accounts_page(request, me, q, None, 500)
        while cursor:
            more, cursor = await _accounts_page(request, me, q, cursor, 500)
            rows += more
        return rows
    rows: list[dict[str, Any]]
    if kind == "products":
        rows = await products_api.list_products(gw, actor, active=None)
    elif kind == "topics":
        rows = await topics_api.list_topics(gw, actor)
    else:
        rows = await groups_api.list_groups(gw, actor)
    if q:
        needle = q.lower()
        rows = [r for r in rows if any(needle in str(v).lower() for v in r.values())]
    return rows


LIST_COLUMNS = {
    "accounts": ["id", "account_no", "role", "name", "phone", "route", "region",
                 "balance_cents", "active"],
    "products": ["code", "name_zh", "name_en", "price_cents", "active"],
    "topics": ["code", "name_zh", "name_en", "active"],
    "groups": ["id", "name", "members"],
}


@router.get("/{kind}.csv", response_model=None)
async def list_csv(request: Request, me: Me, kind: str, q: str | None = None) -> Response:
    if kind not in LIST_COLUMNS:
        return render(request, "error.html", me, 404, error=f"no list {kind}")
    rows = await _list(request, me, kind, q)
    columns = list(rows[0]) if rows else LIST_COLUMNS[kind]
    return csv_download(rows, columns, f"{kind}.csv")


@router.post("/accounts/import", response_class=HTMLResponse, response_model=None)
async def import_accounts(request: Request, me: Me, token: Token,
                          file: Annotated[UploadFile, File()]) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    raw = await file.read()
    try:
        report = await accounts_api.import_csv(raw, gw_of(request), me.actor(request))
    except ApiError as exc:
        return render(request, "error.html", me, exc.status, error=exc.message)
    rows, next_cursor = await _accounts_page(request, me, None, None)
    return render(request, "list.html", me, page="accounts", kind="accounts", rows=rows,
                  columns=LIST_COLUMNS["accounts"], q="", report=report,
                  editable=EDIT_KEYS["accounts"], next_cursor=next_cursor)


@router.get("/data", response_class=HTMLResponse, response_model=None)
async def data(request: Request, me: Me, kind: str = "sales", since: str | None = None,
               until: str | None = None, product: str | None = None,
               format: str | None = None) -> Response:
    from datetime import date

    f = admin.DataFilter(product_code=product or None,
                         since=date.fromisoformat(since) if since else None,
                         until=date.fromisoformat(until) if until else None)
    fn, cols = {"sales": (admin.sales, admin.SALES_COLUMNS),
                "stock": (admin.stock, admin.STOCK_COLUMNS),
                "serials": (admin.serials, admin.SERIAL_COLUMNS)}.get(
                    kind, (admin.sales, admin.SALES_COLUMNS))
    rows = await gw_of(request).store.read(lambda c: fn(c, f))
    if format == "csv":
        return csv_download(rows, list(cols), f"{kind}.csv")
    return render(request, "data.html", me, page="data", kind=kind, rows=rows[:500],
                  columns=cols, q={"since": since or "", "until": until or "",
                                   "product": product or ""})


@router.get("/statistics", response_class=HTMLResponse)
async def statistics(request: Request, me: Me) -> HTMLResponse:
    stats, cost = await gw_of(request).store.read(
        lambda c: (admin.statistics(c), admin.costs(c)))
    t = translator(me.lang)
    cost_days = cost["by_day"][-30:]
    days = stats["by_day"][-30:]
    by_day = charts.line_chart([d["day"] for d in days] or [""],
                               {t("mo"): [d["in"] for d in days] or [0],
                                t("mt"): [d["out"] for d in days] or [0]}, title=t("by_day"))
    conn_items = [(f"{k or '-'} ({d})", v) for d in ("in", "out")
                  for k, v in stats["by_connection"][d].items()]
    return render(request, "statistics.html", me, page="statistics", stats=stats,
                  by_day=by_day,
                  by_connection=charts.bar_chart(conn_items, title=t("by_connection")),
                  by_command=charts.bar_chart(sorted(stats["by_command"].items()),
                                              title=t("by_command")),
                  cost=cost,
                  cost_by_day=charts.line_chart(
                      [d["day"] for d in cost_days] or [""],
                      {t("cost"): [d["millis"] for d in cost_days] or [0]},
                      title=t("cost_by_day"), unit=charts.money),
                  cost_by_connection=charts.bar_chart(
                      sorted(cost["by_connection"].items()), title=t("cost_by_connection"),
                      unit=charts.money))


@router.get("/audit", response_class=HTMLResponse, response_model=None)
async def audit(request: Request, me: Me, cursor: str | None = None) -> Response:
    try:
        before = decode_cursor("audit", cursor)
    except ApiError as exc:
        return render(request, "error.html", me, exc.status, error=exc.message)
    found = await gw_of(request).store.read(lambda c: admin.list_audit(
        c, before_id=before, limit=PAGE_SIZE + 1))
    paged = page("audit", found, PAGE_SIZE)
    return render(request, "audit.html", me, page="audit", rows=paged.items,
                  next_cursor=paged.next_cursor)


# ---------------------------------------------------------------------------------------------
# Phones (the bundled simulator's virtual handsets)
# ---------------------------------------------------------------------------------------------


@router.get("/phones", response_class=HTMLResponse)
async def phones(request: Request, me: Me, phone: str | None = None) -> HTMLResponse:
    sim = getattr(gw_of(request), "simulator", None)
    inbox: list[Any] = []
    known: list[str] = []
    if sim is not None:
        known = sorted(h.msisdn for h in sim.handsets)
        if phone:
            inbox = list(sim.handset(phone).inbox)[-50:]
    return render(request, "phones.html", me, page="phones", sim=sim is not None,
                  phone=phone or "", inbox=inbox, known=known)


@router.post("/phones/send")
async def phone_send(request: Request, me: Me, token: Token,
                     phone: Annotated[str, Form(max_length=32)],
                     text: Annotated[str, Form(max_length=2000)]) -> Response:
    check_csrf(me, token)
    require(me, "operator")
    gw = gw_of(request)
    if gw.simulator is None:
        return render(request, "error.html", me, 409, error=translator(me.lang)("simulator_off"))
    await gw.simulator.inject_mo(phone, gw.settings.source_addr, text)
    return back("/ui/phones", phone=phone)


# The column that names a row in its edit page's path (gateway/console/edit_pages.py).
EDIT_KEYS = {"accounts": "id", "products": "code", "topics": "code"}


@router.get("/{kind}", response_class=HTMLResponse, response_model=None)
async def list_page(request: Request, me: Me, kind: str, q: str | None = None,
                    cursor: str | None = None) -> Response:
    if kind not in LIST_COLUMNS:
        return render(request, "error.html", me, 404, error=f"no page {kind}")
    next_cursor = None
    if kind == "accounts":
        try:
            rows, next_cursor = await _accounts_page(request, me, q, cursor)
        except ApiError as exc:
            return render(request, "error.html", me, exc.status, error=exc.message)
    else:
        rows = await _list(request, me, kind, q)
    return render(request, "list.html", me, page=kind, kind=kind, rows=rows,
                  columns=LIST_COLUMNS[kind], q=q or "", report=None,
                  editable=EDIT_KEYS.get(kind) if me.can("operator") else None,
                  next_cursor=next_cursor)

