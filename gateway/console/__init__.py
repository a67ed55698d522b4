"""The operator console: server-rendered pages (Jinja2) with a little htmx, served by the
admin API's own app at ``/`` (pages under ``/ui``), and the API docs with local assets.

Why this shape: pages rendered on the server need no build step and no JavaScript toolchain
to maintain, work on an air-gapped host, and stay testable over plain HTTP; htmx (vendored,
~50 KB) adds the self-refreshing overview, the live broadcast progress and the broadcast
preview without a single-page app. Charts are inline SVG drawn on the server (charts.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from gateway.console.auth import Forbidden, NotLoggedIn, Sessions

if TYPE_CHECKING:
    from gateway.app import Gateway

STATIC = Path(__file__).with_name("static")


def mount(app: FastAPI, gw: Gateway) -> None:
    """Add the console and the local /docs and /redoc to the API app (create it with
    ``docs_url=None, redoc_url=None``)."""
    from gateway.console import edit_pages, engagement_pages, pages, rules_pages, users_pages

    app.state.console_sessions = Sessions(gw)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")
    # Before pages.router: its /ui/{kind} list route would otherwise take /ui/rules etc.
    for extra in (rules_pages.router, users_pages.router, edit_pages.router,
                  engagement_pages.router):
        app.include_router(extra)
    app.include_router(pages.router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=303)

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - Swagger UI",
            swagger_js_url="/ui/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/ui/static/docs/swagger-ui.css",
            swagger_favicon_url="/ui/static/favicon.svg")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url or "/openapi.json",
                              title=f"{app.title} - ReDoc",
                              redoc_js_url="/ui/static/docs/redoc.standalone.js",
                              redoc_favicon_url="/ui/static/favicon.svg",
                              with_google_fonts=False)

    @app.exception_handler(NotLoggedIn)
    async def to_login(request: Request, exc: NotLoggedIn) -> Response:
        if request.headers.get("hx-request"):  # htmx: reload the whole page to the login
            return Response(status_code=401, headers={"HX-Redirect": "/ui/login"})
        return RedirectResponse("/ui/login", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        user = await app.state.console_sessions.user(request)
        key = "csrf_failed" if str(exc) == "csrf" else "forbidden"
        msg = pages.translator(user.lang)(key, role=user.role)
        return pages.render(request, "error.html", user, 403, error=msg)
