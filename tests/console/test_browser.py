"""The console in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright),
against a real gateway with the bundled simulator: what an operator does, click by click.

One gateway and one browser serve the module (each test logs in its own context). Every
page opened is checked for console errors and failed requests (an asset missing, a CDN
reached for). With SMSGW_SCREENSHOTS=dir the main pages are saved as PNGs (docs/console/).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from commands.demo import load_demo_data
from gateway.app import Gateway
from store import users
from tests.api.conftest import make_settings

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not os.environ.get("CI") and not Path(CHROMIUM).exists(),
                       reason="needs /usr/bin/chromium (apt-get install chromium); "
                              "CI installs it and never skips"),
]
playwright_api = pytest.importorskip("playwright.async_api")

PASSWORD = "correct horse battery"
RETAILER = "8613800000001"  # demo R1001, PIN 123456
SHORT = "10690"
SHOTS = os.environ.get("SMSGW_SCREENSHOTS")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    tmp = tmp_path_factory.mktemp("browser")
    gateway = Gateway(make_settings(f"sqlite:///{tmp / 'console.db'}", sim_receipt_delay=0.01,
                                    poll_interval=0.05))
    await gateway.start()
    await gateway.store.write(lambda c: load_demo_data(c, now=datetime.now(UTC)))
    hashed = users.hash_password(PASSWORD)
    for role in ("admin", "operator", "viewer"):
        await gateway.store.write(lambda c, r=role: users.create_user(
            c, username=r, password_hash=hashed, role=r, lang="en", now=datetime.now(UTC)))
    await asyncio.wait_for(gateway.client.wait_bound(), 10)
    yield gateway
    await gateway.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(gw: Gateway) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        yield b
        await b.close()


class Session:
    """A logged-in browser tab that records console errors and failed requests."""

    def __init__(self, page: Any, base: str) -> None:
        self.page, self.base = page, base
        self.problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(
            f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        # A request cut short by the next navigation (ERR_ABORTED) is the browser's doing.
        page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED" and
                self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(
            f"{r.status}: {r.url}"))

    async def goto(self, path: str) -> Any:
        resp = await self.page.goto(self.base + path)
        assert resp is not None and resp.ok, (path, resp and resp.status)
        return resp

    async def shot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            await self.page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


@pytest_asyncio.fixture(loop_scope="module")
async def login(gw: Gateway, browser: Any) -> AsyncIterator[Any]:
    contexts: list[Any] = []

    async def as_user(username: str) -> Session:
        ctx = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        contexts.append(ctx)
        s = Session(await ctx.new_page(), f"http://127.0.0.1:{gw.api_port}")
        await s.goto("/")
        await s.page.fill("input[name=username]", username)
        await s.page.fill("input[name=password]", PASSWORD)
        await s.page.click("button[type=submit]")
        await s.page.wait_for_url(re.compile(r"/ui/$"))
        return s

    yield as_user
    for ctx in contexts:
        await ctx.close()


async def texted(gw: Gateway, phone: str, text: str) -> str:
    before = len(gw.simulator.handset(phone).inbox)
    await gw.simulator.inject_mo(phone, SHORT, text)
    return (await gw.simulator.wait_for_inbox(phone, before + 1, timeout=10))[before].text


async def test_approve_an_order_texted_from_a_handset(gw: Gateway, login: Any) -> None:
    reply = await texted(gw, RETAILER, "ORD 123456 1001*5 1002*2")
    order = re.search(r"Order (\d+)", reply)
    assert order, reply
    s = await login("operator")
    await s.goto("/ui/orders")
    await s.page.click(f"a[href='/ui/orders?order={order.group(1)}']")
    await s.page.wait_for_selector("#order-detail")
    await s.shot("orders")
    before = len(gw.simulator.handset(RETAILER).inbox)
    await s.page.click("#approve")
    await s.page.wait_for_selector("#flash")
    assert f"Order {order.group(1)} approved" in await s.page.inner_text("#flash")
    inbox = await gw.simulator.wait_for_inbox(RETAILER, before + 1, timeout=10)
    notice = inbox[before].text  # in the retailer's language (demo R1001: Chinese)
    assert f"订单{order.group(1)}已审核通过" in notice, notice
    await s.goto(f"/ui/conversations?phone={RETAILER}")
    assert "answered" in await s.page.inner_text(".thread")
    await s.shot("conversation")
    assert s.problems == []


async def test_viewer_sees_no_approve_button_and_cannot_post(gw: Gateway, login: Any) -> None:
    reply = await texted(gw, RETAILER, "ORD 123456 1001*1")
    order = re.search(r"Order (\d+)", reply)
    assert order, reply
    s = await login("viewer")
    await s.goto(f"/ui/orders?order={order.group(1)}")
    assert await s.page.locator("#approve").count() == 0
    # Forge the form the viewer's page lacks: the server refuses it all the same.
    token = await s.page.get_attribute("input[name=csrf]", "value")
    r = await s.page.request.post(f"{s.base}/ui/orders/{order.group(1)}/approve",
                                  form={"csrf": token or ""})
    assert r.status == 403
    status = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT status FROM orders WHERE id = ?", (int(order.group(1)),)).scalar())
    assert status == "pending_review"


async def test_broadcast_to_a_topic_reaches_done(gw: Gateway, login: Any) -> None:
    for phone in ("8613700000011", "8613700000012"):
        assert "OUTAGE" in await texted(gw, phone, "SUB OUTAGE")
    s = await login("operator")
    await s.goto("/ui/broadcasts")
    await s.page.fill("input[name=name]", "outage drill")
    await s.page.select_option("select[name=target_kind]", "topic")
    await s.page.fill("input[name=target]", "OUTAGE")
    await s.page.fill("textarea[name=text]", "Power off 14:00-16:00 tomorrow")
    await s.page.click("#preview-btn")
    await s.page.wait_for_selector("#preview-result")
    assert "2 recipients" in await s.page.inner_text("#preview-result")
    await s.page.click("#compose button[type=submit]")
    await s.page.wait_for_selector("#flash")
    # The progress table refreshes itself (htmx): wait for "done" without reloading.
    await s.page.wait_for_selector("tr.broadcast[data-status=done]", timeout=15000)
    await s.shot("broadcasts")
    inbox = await gw.simulator.wait_for_inbox("8613700000012", 2, timeout=10)
    assert any("Power off" in m.text for m in inbox)
    assert s.problems == []


async def test_csv_import_reports_bad_rows(gw: Gateway, login: Any, tmp_path: Path) -> None:
    csv_file = tmp_path / "accounts.csv"
    csv_file.write_text("account_no,role,name,phone\n"
                        "R9001,retailer,新店,8613811110001\n"
                        "R9002,wizard,Bad role,8613811110002\n"
                        "R9003,retailer,Bad phone,12\n", encoding="utf-8-sig")
    s = await login("operator")
    await s.goto("/ui/accounts")
    await s.page.set_input_files("input[name=file]", str(csv_file))
    await s.page.click("#upload")
    await s.page.wait_for_selector("#import-report")
    report = await s.page.inner_text("#import-report")
    assert "1 rows imported" in report
    assert await s.page.locator("tr.row-error").count() == 2
    assert "Row 3" in report and "Row 4" in report
    await s.shot("accounts-import")
    assert s.problems == []


async def test_try_it_rule_errors_and_users_page(gw: Gateway, login: Any) -> None:
    s = await login("admin")
    orders_before = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT count(*) FROM orders").scalar())
    await s.goto("/ui/rules")
    await s.page.fill("#try-form input[name=phone]", RETAILER)
    await s.page.fill("#try-form input[name=text]", "ORD 123456 1001*3")
    await s.page.click("#try-btn")  # htmx: the answer appears without leaving the page
    await s.page.wait_for_selector("#tried")
    assert re.search(r"Order \d+", await s.page.inner_text("#tried .reply"))
    assert "insert orders" in await s.page.inner_text("#tried .changes")
    await s.shot("rules")
    assert await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT count(*) FROM orders").scalar()) == orders_before
    # A rule the engine refuses: its message is shown in the form, what was typed is kept.
    await s.page.fill("#rule-form input[name=name]", "night-line")
    await s.page.fill("#rule-form input[name=argument]", "Closed")
    await s.page.fill("#rule-form input[name=window_start]", "22:00")
    await s.page.click("#save-rule")
    await s.page.wait_for_selector("#error")
    assert "window" in await s.page.inner_text("#error")
    assert await s.page.input_value("#rule-form input[name=name]") == "night-line"
    s.problems = [p for p in s.problems if "422" not in p]  # the refused form's answer
    # Users: add one; the generated password is shown once.
    await s.goto("/ui/users")
    await s.page.fill("#add-user input[name=username]", "zhang.wei")
    await s.page.click("#add-user-btn")
    await s.page.wait_for_selector("#new-password")
    assert len((await s.page.inner_text("#new-password code")).strip()) >= 10
    await s.goto("/ui/users")
    await s.shot("users")
    assert s.problems == [], s.problems


async def test_every_page_renders_without_console_errors(gw: Gateway, login: Any) -> None:
    from gateway.console.pages import NAV

    s = await login("admin")
    for name in NAV:
        await s.goto(f"/ui/{'' if name == 'overview' else name}")
        if name in ("overview", "statistics", "messages"):
            await s.shot(name)
    await s.goto(f"/ui/phones?phone={RETAILER}")
    await s.shot("phones")
    await s.goto("/docs")
    await s.page.wait_for_selector(".swagger-ui .info", timeout=15000)
    assert s.problems == [], s.problems



async def test_poll_open_to_a_keyword_tallies_live(gw: Gateway, login: Any) -> None:
    s = await login("operator")
    await s.goto("/ui/engagements")
    await s.page.click("#new-poll")
    await s.page.fill("input[name=name]", "Shelf check")
    await s.page.select_option("select[name=lang]", "en")
    await s.page.fill("input[name=keyword]", "SHELF")
    await s.page.fill("input[name=question]", "Is the new display up? 1 Yes 2 No")
    await s.page.fill("textarea[name=options]", "Yes = Y, 是\nNo = N, 否")
    await s.page.select_option("select[name=target_kind]", "")
    await s.page.check("input[name=open_to_all]")
    await s.page.click("#create-engagement")
    await s.page.wait_for_selector("#start")
    await s.page.click("#start")
    await s.page.wait_for_selector("#state[data-status=running]")
    assert await s.page.inner_text("#tallies tr.tally[data-option='1'] .votes") == "0"
    # A vote texted from a virtual handset: the tally on the open page updates by itself.
    assert "Yes" in await texted(gw, "8613700000051", "SHELF 是")
    await s.page.wait_for_selector("#tallies[data-votes='1']", timeout=8000)
    assert await s.page.inner_text("#tallies tr.tally[data-option='1'] .votes") == "1"
    await s.shot("engagement")
    assert s.problems == [], s.problems
