"""The console's editing pages over HTTP: rules and the try-it box, templates, users,
accounts / products / topics, messages search and paging, the cost chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from gateway.app import Gateway
from store import admin, outbound, users
from store.models import inbound_messages, orders, outbound_messages
from tests.console.conftest import base_url, form_token, login

RETAILER = "8613800000001"  # demo R1001, PIN 123456


async def _counts(gw: Gateway) -> tuple[int, int, int]:
    def run(c: sa.Connection) -> tuple[int, int, int]:
        n = [c.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
             for t in (orders, inbound_messages, outbound_messages)]
        return n[0], n[1], n[2]

    return await gw.store.read(run)


async def test_try_it_answers_an_order_and_writes_nothing(console_gw: Gateway,
                                                          http: httpx.AsyncClient) -> None:
    await login(http, "viewer")  # trying changes nothing: any role may
    page = await http.get("/ui/rules")
    assert page.status_code == 200 and 'id="try-form"' in page.text
    before = await _counts(console_gw)
    r = await http.post("/ui/rules/try", data={"csrf": form_token(page.text),
                                               "phone": "+86 138 0000 0001",
                                               "text": "ORD 123456 1001*5"})
    assert r.status_code == 200, r.text
    reply = re.search(r'class="reply">([^<]*)<', r.text)
    assert reply and re.search(r"Order \d+", reply.group(1)), r.text  # the real order reply
    assert 'class="command">ORD' in r.text
    assert 'class="disposition">answered' in r.text
    # What it WOULD change: the order and its line, shown, then rolled back.
    assert re.search(r"<b>insert</b> orders", r.text), r.text
    assert await _counts(console_gw) == before  # no order, no MO, no MT


async def test_try_it_names_the_matching_rule_and_bad_phone(console_gw: Gateway,
                                                            http: httpx.AsyncClient) -> None:
    await login(http, "operator")
    page = await http.get("/ui/rules")
    token = form_token(page.text)
    r = await http.post("/ui/rules", data={
        "csrf": token, "name": "faq-open", "priority": "1", "keyword": "OPENING",
        "action": "reply", "argument": "Open 8-20 || 营业时间8-20点", "enabled": "on"})
    assert r.status_code == 303, r.text
    r = await http.post("/ui/rules/try", data={"csrf": token, "phone": "13900000077",
                                               "text": "opening"})
    assert 'class="matched">faq-open' in r.text and "Open 8-20" in r.text
    assert "Nothing." in r.text  # a reply rule changes no data
    r = await http.post("/ui/rules/try", data={"csrf": token, "phone": "12", "text": "x"})
    assert 'id="try-error"' in r.text


async def test_rule_validation_error_is_shown_in_the_form(console_gw: Gateway,
                                                          http: httpx.AsyncClient) -> None:
    await login(http, "operator")
    token = form_token((await http.get("/ui/rules")).text)
    r = await http.post("/ui/rules", data={"csrf": token, "name": "bad-window",
                                           "action": "reply", "argument": "hi",
                                           "window_start": "25:00", "window_end": "08:00"})
    assert r.status_code == 422
    assert 'id="error"' in r.text and "bad-window" in r.text and "window" in r.text
    assert 'value="bad-window"' in r.text  # the form keeps what was typed
    listed = (await http.get("/ui/rules")).text
    assert 'data-rule="bad-window"' not in listed
    # Edit an existing rule, then delete it; both in the audit log under the user.
    await http.post("/ui/rules", data={"csrf": token, "name": "tmp", "action": "reply",
                                       "argument": "one", "enabled": "on"})
    edit = await http.get("/ui/rules?edit=tmp")
    assert 'name="editing"' in edit.text and 'value="one"' in edit.text
    r = await http.post("/ui/rules", data={"csrf": token, "name": "tmp", "editing": "1",
                                           "action": "reply", "argument": "two"})
    assert r.status_code == 303
    rules_page = (await http.get("/ui/rules")).text
    assert re.search(r'data-rule="tmp".*?<td>two</td>', rules_page, re.S)
    assert (await http.post("/ui/rules/tmp/delete", data={"csrf": token})).status_code == 303
    rows = await console_gw.store.read(lambda c: admin.list_audit(c, resource="rule"))
    assert [r["key_name"] for r in rows[:3]] == ["user:operator"] * 3


async def test_viewer_cannot_save_rules(console_gw: Gateway, http: httpx.AsyncClient) -> None:
    await login(http, "viewer")
    page = await http.get("/ui/rules")
    assert 'id="rule-form"' not in page.text
    r = await http.post("/ui/rules", data={"csrf": form_token(page.text), "name": "x",
                                           "action": "reply", "argument": "y"})
    assert r.status_code == 403


async def test_templates_page_lists_both_languages(http: httpx.AsyncClient) -> None:
    await login(http, "viewer")
    r = await http.get("/ui/templates?q=e12")
    assert r.status_code == 200 and "e12_rate_limited" in r.text


async def test_users_page_admin_only(console_gw: Gateway, http: httpx.AsyncClient) -> None:
    for role in ("viewer", "operator"):
        async with httpx.AsyncClient(base_url=base_url(console_gw), timeout=20) as other:
            await login(other, role)
            assert (await other.get("/ui/users")).status_code == 403
            home = await other.get("/ui/")
            assert 'href="/ui/users"' not in home.text
            r = await other.post("/ui/users", data={"csrf": form_token(home.text),
                                                    "username": "sneaky", "role": "admin"})
            assert r.status_code == 403
    await login(http, "admin")
    page = await http.get("/ui/users")
    assert page.status_code == 200 and 'data-user="viewer"' in page.text
    token = form_token(page.text)
    r = await http.post("/ui/users", data={"csrf": token, "username": "li.na",
                                           "role": "operator", "lang": "zh"})
    assert r.status_code == 201
    shown = re.search(r'<code class="secret">([^<]+)</code>', r.text)
    assert shown, r.text
    assert (await http.get("/ui/users")).text.count('class="secret"') == 0  # shown once
    r = await http.post("/ui/users", data={"csrf": token, "username": "li.na",
                                           "role": "operator"})
    assert r.status_code == 422 and "exists" in r.text
    # The new user logs in with the shown password; disabling ends that session.
    async with httpx.AsyncClient(base_url=base_url(console_gw), timeout=20) as li:
        assert (await login(li, "li.na", shown.group(1))).status_code == 303
        row = await console_gw.store.read(lambda c: users.get_by_name(c, "li.na"))
        assert row is not None
        r = await http.post(f"/ui/users/{row['id']}/disable", data={"csrf": token})
        assert r.status_code == 200 and "disabled" in r.text
        assert (await li.get("/ui/")).status_code == 303
        await http.post(f"/ui/users/{row['id']}/disable", data={"csrf": token, "enable": "1"})
        r = await http.post(f"/ui/users/{row['id']}/password", data={"csrf": token})
        new = re.search(r'<code class="secret">([^<]+)</code>', r.text)
        assert new and new.group(1) != shown.group(1)
        assert (await login(li, "li.na", shown.group(1))).status_code == 401
        assert (await login(li, "li.na", new.group(1))).status_code == 303
    me = await console_gw.store.read(lambda c: users.get_by_name(c, "admin"))
    r = await http.post(f"/ui/users/{me['id']}/disable", data={"csrf": token})  # type: ignore[index]
    assert r.status_code == 409
    audit = await console_gw.store.read(lambda c: admin.list_audit(c, resource="console_user"))
    assert {a["key_name"] for a in audit[:4]} == {"user:admin"}


async def test_edit_account_product_topic_with_api_errors(console_gw: Gateway,
                                                          http: httpx.AsyncClient) -> None:
    await login(http, "operator")
    listed = await http.get("/ui/accounts?q=R1001")
    link = re.search(r'href="(/ui/accounts/(\d+)/edit)"', listed.text)
    assert link, listed.text
    form = await http.get(link.group(1))
    assert 'name="region"' in form.text and 'name="sms_ordering"' in form.text
    token = form_token(form.text)
    fields = {"csrf": token, "name": "新名字店", "role": "retailer", "phone": RETAILER,
              "lang": "zh", "region": "east", "route": "R9", "manager_id": "",
              "order_days": "", "active": "on"}  # sms_ordering unticked: disabled
    r = await http.post(link.group(1), data=fields)
    assert r.status_code == 303, r.text
    row = await console_gw.store.read(lambda c: c.execute(sa.text(
        "SELECT name, region, route, sms_ordering FROM accounts WHERE id = :i"),
        {"i": int(link.group(2))}).one())
    assert tuple(row) == ("新名字店", "east", "R9", False)
    # The API's own validation messages, in the form, nothing saved.
    r = await http.post(link.group(1), data={**fields, "order_window_start": "25:99"})
    assert r.status_code == 422 and "order_window_start" in r.text
    r = await http.post(link.group(1), data={**fields, "manager_id": "999999"})
    assert r.status_code == 422 and "no account 999999" in r.text
    r = await http.post("/ui/products/1001/edit", data={
        "csrf": token, "name_zh": "烟A", "name_en": "Brand A", "price_cents": "-5",
        "max_qty": "10", "active": "on"})
    assert r.status_code == 422 and "price_cents" in r.text
    r = await http.post("/ui/products/1001/edit", data={
        "csrf": token, "name_zh": "烟A", "name_en": "Brand A", "price_cents": "1250",
        "max_qty": "10", "active": "on"})
    assert r.status_code == 303
    price = await console_gw.store.read(lambda c: c.execute(sa.text(
        "SELECT price_cents, max_qty FROM products WHERE code = '1001'")).one())
    assert tuple(price) == (1250, 10)
    topics = await http.get("/ui/topics")
    code = re.search(r'href="/ui/topics/(\w+)/edit"', topics.text)
    assert code, topics.text
    r = await http.post(f"/ui/topics/{code.group(1)}/edit", data={
        "csrf": token, "name_zh": "", "name_en": "Outage", "public": "on", "active": "on"})
    assert r.status_code == 422 and "name_zh" in r.text
    audit = await console_gw.store.read(lambda c: admin.list_audit(c, resource="product"))
    assert audit and audit[0]["key_name"] == "user:operator"


async def test_messages_by_connection_broadcast_and_paging(console_gw: Gateway,
                                                           http: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)

    def seed(c: sa.Connection) -> None:
        rows = [{"dest_addr": f"86139000{i:05d}", "text": f"bulk {i}"} for i in range(130)]
        ids = outbound.enqueue_many(c, rows, now=now, source_addr="10690")
        # As if sent already (in this same transaction, so the dispatcher never claims them).
        c.execute(outbound_messages.update().where(outbound_messages.c.id.in_(ids))
                  .values(status="delivered", connection="smsc-a", cost_millis=10))
        c.execute(outbound_messages.update().where(outbound_messages.c.id.in_(ids[:5]))
                  .values(broadcast_id=77, connection="smsc-b", cost_millis=50))

    await console_gw.store.write(seed)
    await login(http, "viewer")
    first = await http.get("/ui/messages")
    assert first.text.count("bulk ") == 100
    nxt = re.search(r'id="next-page" href="\?([^"]+)"', first.text)
    assert nxt, "no link to the next page"
    second = await http.get("/ui/messages?" + nxt.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and "bulk 0<" in second.text
    assert "bulk 129<" not in second.text and 'id="next-page"' not in second.text
    r = await http.get("/ui/messages?broadcast=77")
    assert r.text.count("bulk ") == 5
    r = await http.get("/ui/messages?connection=smsc-b&direction=out")
    assert r.text.count("bulk ") == 5
    r = await http.get("/ui/messages?cursor=bogus")
    assert 'id="error"' in r.text
    stats = await http.get("/ui/statistics")
    # 5 x 0.050 on smsc-b, 125 x 0.010 on smsc-a
    assert 'id="costs"' in stats.text and ">0.25<" in stats.text and ">1.25<" in stats.text
