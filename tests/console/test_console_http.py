"""The console over plain HTTP: login, sessions, CSRF, roles, audit, CSV, local /docs."""

from __future__ import annotations

import httpx

from gateway.app import Gateway
from store import admin
from tests.console.conftest import base_url, form_token, login


async def test_login_logout_and_session_checks(console_gw: Gateway,
                                               http: httpx.AsyncClient) -> None:
    r = await http.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/ui/"
    r = await http.get("/ui/")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    bad = await login(http, "admin", "wrong password")
    assert bad.status_code == 401 and "Wrong username or password" in bad.text
    ok = await login(http, "admin")
    assert ok.status_code == 303, ok.text
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = await http.get("/ui/")
    assert page.status_code == 200 and "Connections" in page.text
    # A forged cookie (changed payload, old signature) is refused.
    good = http.cookies["smsgw_session"]
    body, mac = good.split(".")
    http.cookies.set("smsgw_session", body[:-2] + ("AA" if body[-2:] != "AA" else "BB")
                     + "." + mac)
    assert (await http.get("/ui/")).status_code == 303
    http.cookies.set("smsgw_session", good)
    assert (await http.get("/ui/")).status_code == 200
    # Logout ends the session: the same cookie, replayed, no longer works.
    r = await http.post("/ui/logout", data={"csrf": form_token(page.text)})
    assert r.status_code == 303
    http.cookies.set("smsgw_session", good)
    assert (await http.get("/ui/")).status_code == 303


async def test_expired_cookie_is_refused(console_gw: Gateway, http: httpx.AsyncClient) -> None:
    import time

    from gateway.console.auth import sign
    from store import users

    sessions = console_gw._api.app.state.console_sessions  # the app's own secret
    row = await console_gw.store.read(lambda c: users.get_by_name(c, "admin"))
    old = sign(sessions.secret, {"u": row["id"], "e": row["session_epoch"], "c": "x",
                                 "t": int(time.time()) - 13 * 3600})
    http.cookies.set("smsgw_session", old)
    assert (await http.get("/ui/")).status_code == 303


async def test_post_without_csrf_token_is_refused(console_gw: Gateway,
                                                  http: httpx.AsyncClient) -> None:
    assert (await login(http, "operator")).status_code == 303
    r = await http.post("/ui/conversations/send",
                        data={"phone": "8613800000001", "text": "hi", "csrf": "forged"})
    assert r.status_code == 403 and "not accepted" in r.text
    r = await http.post("/ui/conversations/send", data={"phone": "8613800000001", "text": "hi"})
    assert r.status_code in (403, 422)
    n = await console_gw.store.read(lambda c: len(admin.list_messages(
        c, direction="out", phone="8613800000001")))
    assert n == 0  # nothing was queued


async def test_viewer_cannot_change_and_audit_names_the_user(
        console_gw: Gateway, http: httpx.AsyncClient) -> None:
    assert (await login(http, "viewer")).status_code == 303
    page = await http.get("/ui/conversations?phone=8613800000001")
    r = await http.post("/ui/conversations/send", data={
        "phone": "8613800000001", "text": "hi", "csrf": form_token(page.text)})
    assert r.status_code == 403 and "viewer" in r.text
    async with httpx.AsyncClient(base_url=base_url(console_gw), timeout=20) as op:
        assert (await login(op, "operator")).status_code == 303
        page = await op.get("/ui/conversations?phone=8613800000001")
        r = await op.post("/ui/conversations/send", data={
            "phone": "8613800000001", "text": "hello from the console",
            "csrf": form_token(page.text)})
        assert r.status_code == 303, r.text
        thread = await op.get(r.headers["location"])
        assert "hello from the console" in thread.text
    rows = await console_gw.store.read(lambda c: admin.list_audit(c, resource="message"))
    assert rows and rows[0]["key_name"] == "user:operator"


async def test_login_throttle(console_gw: Gateway, http: httpx.AsyncClient) -> None:
    limit = console_gw.settings.auth_max_failures
    for _ in range(limit):
        await login(http, "admin", "nope nope nope")
    r = await login(http, "admin")  # right password, but the source is locked out
    assert r.status_code == 429 and "try again" in r.text


async def test_accounts_csv_export_has_bom_and_chinese(console_gw: Gateway,
                                                       http: httpx.AsyncClient) -> None:
    await login(http, "viewer")
    r = await http.get("/ui/accounts.csv")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    assert "account_no" in r.text


async def test_docs_served_without_cdn(http: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        html = (await http.get(path)).text
        assert "cdn" not in html.lower() and "googleapis" not in html, html
    js = await http.get("/ui/static/docs/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert (await http.get("/ui/static/docs/redoc.standalone.js")).status_code == 200


async def test_every_page_renders_in_both_languages(console_gw: Gateway,
                                                    http: httpx.AsyncClient) -> None:
    from gateway.console.pages import NAV

    page = await http.get("/ui/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "登录" in page.text
    await login(http, "admin")
    for name in (*NAV, "me"):
        r = await http.get(f"/ui/{'' if name == 'overview' else name}")
        assert r.status_code == 200, (name, r.text[:300])
    # Pages under the navigation: an engagement's create forms and its results (demo data).
    for path in ("/ui/engagements/new?kind=poll", "/ui/engagements/new?kind=survey",
                 "/ui/engagements/new?kind=campaign", "/ui/engagements/1",
                 "/ui/engagements/2"):
        r = await http.get(path)
        assert r.status_code == 200, (path, r.text[:300])
    page = await http.get("/ui/")
    r = await http.post("/ui/me/lang", data={"lang": "zh", "csrf": form_token(page.text)})
    assert r.status_code == 303
    assert "总览" in (await http.get("/ui/")).text
    assert "计票" in (await http.get("/ui/engagements/1")).text  # the demo poll, in Chinese
