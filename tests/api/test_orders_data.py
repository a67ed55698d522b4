"""Orders placed by SMS, reviewed through the API; collected data with CSV export."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

from commands.demo import load_demo_data
from gateway.app import Gateway
from tests.api.conftest import Api, assert_error

RETAILER = "8613800000001"  # R1001, PIN 123456, SMS ordering, balance 5000.00


async def text(gw: Gateway, phone: str, body: str) -> str:
    before = len(gw.simulator.handset(phone).inbox)
    await gw.simulator.inject_mo(phone, "10690", body)
    return (await gw.simulator.wait_for_inbox(phone, before + 1, timeout=10))[before].text


def order_no(reply: str) -> int:
    m = re.search(r"(?:Order |订单)(\d+)", reply)
    assert m, reply
    return int(m.group(1))


async def _events(gw: Gateway, type_: str) -> list[dict]:
    rows = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT type, payload FROM events").all())
    return [json.loads(p) for t, p in rows if t == type_]


async def test_approve_and_reject_orders_placed_by_sms(gw: Gateway, api: Api) -> None:
    await gw.store.write(lambda c: load_demo_data(c, now=datetime.now(UTC)))
    first = order_no(await text(gw, RETAILER, "ORD 123456 1001*2"))
    second = order_no(await text(gw, RETAILER, "ORD 123456 1002*1"))
    listed = (await api.viewer.get("/orders", params={"status": "pending_review"})).json()
    assert {o["id"] for o in listed["items"]} == {first, second}
    assert listed["items"][0]["account_no"] == "R1001"
    order = (await api.viewer.get(f"/orders/{first}")).json()
    assert order["lines"] == [{"product_code": "1001", "qty": 2, "price_cents": 45000}]

    assert_error(await api.viewer.post(f"/orders/{first}/approve"), 403)
    r = await api.operator.post(f"/orders/{first}/approve")
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["status"] == "approved" and approved["balance_cents"] == 500000 - 90000
    assert [h["status"] for h in approved["history"]] == ["pending_review", "approved"]
    assert_error(await api.operator.post(f"/orders/{first}/approve"), 409, "not_reviewable")

    assert_error(await api.operator.post(f"/orders/{second}/reject", json={}), 422)
    r = await api.operator.post(f"/orders/{second}/reject", json={"reason": "out of stock"})
    assert r.json()["status"] == "rejected" and r.json()["reject_reason"] == "out of stock"
    assert_error(await api.operator.post("/orders/999999/reject", json={"reason": "x"}), 404)

    ok = await _events(gw, "order.approved")
    no = await _events(gw, "order.rejected")
    assert [e["order_id"] for e in ok] == [first] and ok[0]["account_id"] == order["account_id"]
    assert [(e["order_id"], e["reason"]) for e in no] == [(second, "out of stock")]
    audit = (await api.viewer.get("/audit-log", params={"resource": "order"})).json()["items"]
    assert audit[-1]["before"]["status"] == "pending_review"
    assert audit[-1]["after"]["status"] == "approved"
    assert audit[-1]["before"]["balance_cents"] == 500000


async def test_collected_data_and_csv_export(gw: Gateway, api: Api) -> None:
    await gw.store.write(lambda c: load_demo_data(c, now=datetime.now(UTC)))
    await text(gw, RETAILER, "SAL 1001*3 1002*4")
    await text(gw, RETAILER, "STK 1001*30")
    await text(gw, RETAILER, "SN 490154203237518 SER0001")

    sales = (await api.viewer.get("/sales-reports", params={"route": "KM-01"})).json()["items"]
    assert sorted((s["product_code"], s["qty"]) for s in sales) == [("1001", 3), ("1002", 4)]
    r = await api.viewer.get("/sales-reports", params={"format": "csv", "product_code": "1002"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["account_no"], x["qty"]) for x in rows] == [("R1001", "4")]
    r = await api.viewer.get("/sales-reports/export.csv", params={"since": "2000-01-01"})
    assert len(list(csv.DictReader(io.StringIO(r.text)))) == 2
    assert (await api.viewer.get("/sales-reports", params={"since": "2999-01-01"})).json() \
        == {"items": []}

    stock = (await api.viewer.get("/stock-counts")).json()["items"]
    assert [(s["product_code"], s["qty"]) for s in stock] == [("1001", 30)]
    assert "count_date" in (await api.viewer.get("/stock-counts/export.csv")).text
    serials = (await api.viewer.get("/serial-events")).json()["items"]
    assert {s["serial"] for s in serials} == {"490154203237518", "SER0001"}
    r = await api.viewer.get("/serial-events/export.csv", params={"serial": "SER0001"})
    assert len(list(csv.DictReader(io.StringIO(r.text)))) == 1
    assert_error(await api.viewer.get("/sales-reports", params={"since": "yesterday"}), 422)

    log = (await api.viewer.get(f"/phones/{RETAILER}/interactions")).json()["items"]
    assert [x["direction"] for x in log] == ["in", "out"] * 3
    assert log[0]["text"].startswith("SAL") and log[0]["command"] == "SAL"
    stats = (await api.viewer.get("/stats")).json()
    assert stats["by_command"].get("SAL") == 1 and stats["by_direction"]["in"] == 3
