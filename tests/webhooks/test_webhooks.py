"""Webhooks end to end: a real gateway (bundled simulator), a real HTTP receiver
(http.server in a thread), the API over HTTP; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from commands.rules import save_rule, validate_rule
from gateway.app import Gateway
from store import admin, webhooks
from tests.api.conftest import make_settings
from tests.webhooks.receiver import OK, Receiver

PHONE = "8613800000077"


async def until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def independent_check(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What docs/webhooks.md tells a receiver to do, written here without our code."""
    ts = headers["X-Smsgw-Timestamp"]
    want = "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body,
                            hashlib.sha256).hexdigest()
    return (hmac.compare_digest(want, headers["X-Smsgw-Signature"])
            and abs(time.time() - int(ts)) < 300)


@pytest.fixture
async def gw(db_url: str) -> AsyncIterator[Gateway]:
    gateway = Gateway(make_settings(db_url, webhook_backoff_min=0.05, webhook_backoff_max=0.2,
                                    webhook_max_attempts=3, webhook_poll_interval=0.05,
                                    webhook_timeout=2.0))
    await gateway.start()
    try:
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture
async def api(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    _, key = await gw.store.write(lambda c: admin.create_api_key(
        c, name="hooks", role="admin", now=datetime.now(UTC)))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}", timeout=20,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


async def test_message_final_state_is_posted_signed(gw: Gateway, api: httpx.AsyncClient,
                                                    receiver: Receiver) -> None:
    r = await api.post("/messages", json={"to": PHONE, "text": "hello",
                                          "callback_url": receiver.url + "/dlr"})
    assert r.status_code == 202, r.text
    mt_id = r.json()["id"]
    await until(lambda: receiver.seen)
    seen = receiver.seen[0]
    body = json.loads(seen.body)
    assert seen.method == "POST" and seen.path == "/dlr"
    assert body["event"] == "message.delivered" and body["message_id"] == mt_id
    assert body["status"] == "delivered" and body["to"] == PHONE
    assert seen.headers["Idempotency-Key"] == f"mt-{mt_id}-delivered"
    secret = (await api.get("/webhooks/default-secret")).json()["secret"]
    assert independent_check(secret, seen.headers, seen.body)
    assert not independent_check("another-secret-entirely", seen.headers, seen.body)
    listed = (await api.get("/webhooks/deliveries", params={"status": "delivered"})).json()
    assert [d["idempotency_key"] for d in listed["items"]] == [f"mt-{mt_id}-delivered"]


async def test_failing_receiver_recovers_reply_queued_once(
        gw: Gateway, api: httpx.AsyncClient, receiver: Receiver) -> None:
    """An MO webhook (Kannel reply mode) whose receiver fails twice, then answers with the
    reply: three attempts with one Idempotency-Key, and exactly one reply SMS."""
    receiver.responses = [(500, "text/plain", "down", 0.0), (503, "text/plain", "", 0.0),
                          (200, "text/plain", "Your ticket is 42", 0.0)]
    r = await api.post("/webhooks/subscriptions", json={
        "name": "crm", "url": receiver.url + "/mo", "reply": True, "events": "none"})
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    now = datetime.now(UTC)
    await gw.store.write(lambda c: save_rule(c, validate_rule(
        {"name": "to-crm", "keyword": "TICKET", "action": "webhook", "argument": "crm",
         "priority": 1}), now))
    gw.rules.invalidate()
    await gw.simulator.inject_mo(PHONE, "10690", "TICKET printer broken")
    inbox = await gw.simulator.wait_for_inbox(PHONE, 1, timeout=15)
    assert inbox[0].text == "Your ticket is 42"
    assert len(receiver.seen) == 3
    assert len({s.headers["Idempotency-Key"] for s in receiver.seen}) == 1
    body = json.loads(receiver.seen[-1].body)
    assert body["event"] == "mo.received" and body["from"] == PHONE
    assert body["text"] == "TICKET printer broken" and body["to"] == "10690"
    assert all(independent_check(secret, s.headers, s.body) for s in receiver.seen)
    await asyncio.sleep(0.5)  # nothing more may come
    assert len(gw.simulator.handset(PHONE).inbox) == 1
    rows = await gw.store.read(lambda c: webhooks.list_deliveries(c))
    assert len(rows) == 1 and rows[0]["status"] == "delivered" and rows[0]["attempts"] == 3
    assert rows[0]["reply_mt_id"] is not None
    replies = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT count(*) FROM outbound_messages WHERE in_reply_to = "
        f"{rows[0]['mo_id']}").scalar())
    assert replies == 1
    mo = await gw.store.read(lambda c: c.exec_driver_sql(
        f"SELECT disposition FROM inbound_messages WHERE id = {rows[0]['mo_id']}").scalar())
    assert mo == "forwarded"


async def test_dead_letter_then_retry_through_the_api(
        gw: Gateway, api: httpx.AsyncClient, receiver: Receiver) -> None:
    receiver.responses = [(500, "text/plain", "broken", 0.0)]
    r = await api.post("/messages", json={"to": PHONE, "text": "x",
                                          "callback_url": receiver.url})
    mt_id = r.json()["id"]

    async def dead() -> list[dict[str, Any]]:
        return (await api.get("/webhooks/deliveries", params={"status": "dead"})).json()[
            "items"]

    deadline = time.monotonic() + 15
    while not (items := await dead()):
        assert time.monotonic() < deadline, "no dead delivery"
        await asyncio.sleep(0.1)
    assert items[0]["attempts"] == 3 and items[0]["last_status"] == 500
    assert "broken" in items[0]["last_error"]
    assert len(receiver.seen) == 3
    receiver.responses = [OK]
    receiver.seen.clear()
    r = await api.post(f"/webhooks/deliveries/{items[0]['id']}/retry")
    assert r.status_code == 200, r.text
    await until(lambda: receiver.seen)
    assert json.loads(receiver.seen[0].body)["message_id"] == mt_id
    deadline = time.monotonic() + 5
    while (await api.get(f"/webhooks/deliveries/{items[0]['id']}")).json()["status"] \
            != "delivered":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    r = await api.post(f"/webhooks/deliveries/{items[0]['id']}/retry")
    assert r.status_code == 409


async def test_get_form_kannel_placeholders_and_events(
        gw: Gateway, api: httpx.AsyncClient, receiver: Receiver) -> None:
    r = await api.post("/webhooks/subscriptions", json={
        "name": "legacy", "url": receiver.url + "/get?from=%p&to=%P&text=%a&k=%k&smsc=%i",
        "form": "get", "events": "order.*,broadcast.done"})
    assert r.status_code == 201, r.text
    await gw.store.write(lambda c: save_rule(c, validate_rule(
        {"name": "legacy", "keyword": "OLD", "action": "webhook", "argument": "legacy"}),
        datetime.now(UTC)))
    gw.rules.invalidate()
    await gw.simulator.inject_mo(PHONE, "10690", "OLD 50% off & more")
    await until(lambda: receiver.seen)
    seen = receiver.seen[0]
    assert seen.method == "GET"
    q = parse_qs(urlsplit(seen.path).query)
    assert q == {"from": [PHONE], "to": ["10690"], "text": ["OLD 50% off & more"],
                 "k": ["OLD"], "smsc": [gw.client.name]}
    # A gateway event goes to subscribers listening for it, in the event's transaction.
    from store.notices import raise_event

    await gw.store.write(lambda c: raise_event(c, "order.approved", {"order_id": 7},
                                               datetime.now(UTC)))
    await gw.store.write(lambda c: raise_event(c, "stock.low", {"x": 1}, datetime.now(UTC)))
    await until(lambda: len(receiver.seen) >= 2)
    await asyncio.sleep(0.3)
    assert len(receiver.seen) == 2  # stock.low: nobody listens
    assert "order.approved" in receiver.seen[1].headers["X-Smsgw-Event"]
