"""Demo data for a walkthrough (`smsgw demo-data`): products, retailers, subscribers, a
manager and topics. Idempotent: rows that exist (by product code, account number, topic
code) are left as they are, so a second run changes nothing and keeps earlier activity.

Demo PINs are public knowledge: never load this into a production database.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from commands.pins import hash_pin
from common.phones import canonical
from store import engagement as engagement_store
from store.domain import accounts
from store.domain import products as product_repo
from store.models import products, topics

# code, name_zh, name_en, price (cents, per carton / case), cost, max_qty, company stock, active
PRODUCTS: list[tuple[str, str, str, int, int, int, int, bool]] = [
    ("1001", "中华(硬)", "Zhonghua Hard", 45000, 40500, 10, 800, True),
    ("1002", "玉溪(软)", "Yuxi Soft", 23000, 20200, 20, 1500, True),
    ("1003", "红塔山(经典)", "Hongtashan Classic", 9500, 8200, 30, 3000, True),
    ("1004", "芙蓉王(硬)", "Furongwang Hard", 25000, 21800, 20, 1200, True),
    ("1005", "云烟(紫)", "Yunyan Purple", 11000, 9500, 30, 2500, True),
    ("1006", "利群(新版)", "Liqun New", 14000, 12100, 20, 1800, True),
    ("1007", "黄鹤楼(软蓝)", "Huanghelou Soft Blue", 19000, 16500, 20, 900, True),
    ("1008", "白沙(精品)", "Baisha Premium", 11000, 9600, 30, 2000, True),
    ("2001", "农夫山泉550ml(箱)", "Nongfu Spring 550ml case", 3600, 2900, 50, 5000, True),
    ("2002", "康师傅红烧牛肉面(箱)", "Master Kong Beef Noodles case", 6000, 5000, 20, 3000, True),
    ("1099", "停售样品", "Discontinued sample", 10000, 9000, 10, 0, False),
]

TOPICS: list[tuple[str, str, str, bool]] = [
    # code, name_zh, name_en, public (unregistered numbers may subscribe)
    ("OUTAGE", "停电通知", "Power outage alerts", True),
    ("BILL", "账单提醒", "Bill reminders", False),
    ("PROMO", "优惠活动", "Promotions", True),
]

ROUTE = "KM-01"

# A retailer satisfaction poll and a weekly stock survey, open to anyone who texts the
# keyword (`smsgw phone`: SAT, then 1; STOCK, then three answers). Shapes:
# commands/engagement/spec.py.
ENGAGEMENTS: list[dict[str, Any]] = [
    {"kind": "poll", "keyword": "SAT", "name": "Retailer satisfaction / 零售户满意度",
     "goal": "How retailers rate our delivery service", "config": {
         "question": {"zh": "您对我们的配送服务满意吗？",
                      "en": "How satisfied are you with our delivery service?"},
         "options": [
             {"label": {"zh": "满意", "en": "Satisfied"},
              "keywords": ["GOOD", "SATISFIED", "MY", "好"]},
             {"label": {"zh": "一般", "en": "Average"},
              "keywords": ["OK", "AVERAGE", "YB"]},
             {"label": {"zh": "不满意", "en": "Unhappy"},
              "keywords": ["BAD", "UNHAPPY", "BMY", "差"]},
         ],
         "counts": "last", "confirm": True}},
    {"kind": "survey", "keyword": "STOCK", "name": "Weekly stock / 每周库存",
     "goal": "Stock on hand and restocking needs, every week", "config": {
         "intro": {"zh": "每周库存调查，共3题。", "en": "Weekly stock survey, 3 questions."},
         "questions": [
             {"id": "cartons_1001", "type": "number", "min": 0, "max": 500,
              "text": {"zh": "中华(硬)1001还有几条？", "en": "Cartons of 1001 on hand?"}},
             {"id": "restock", "type": "yesno",
              "text": {"zh": "本周需要补货吗？", "en": "Do you need a delivery this week?"}},
             {"id": "best_seller", "type": "choice",
              "text": {"zh": "本周卖得最好的是？", "en": "Best seller this week?"},
              "options": [{"label": "1001", "keywords": ["中华", "ZH"]},
                          {"label": "1002", "keywords": ["玉溪", "YX"]},
                          {"label": "1003", "keywords": ["红塔山", "HTS"]}]},
         ],
         "final": {"zh": "谢谢！下周再见。", "en": "Thank you! See you next week."},
         "timeout_minutes": 1440}},
]


def _accounts(now: datetime) -> list[dict[str, Any]]:
    today = now.date()
    common = {"region": "昆明", "route": ROUTE, "lang": "zh"}
    return [
        {"account_no": "M2001", "role": "manager", "name": "周经理", "phone": "8613900000001",
         "pin": "888888", **common},
        {"account_no": "R1001", "role": "retailer", "name": "张记便利店",
         "phone": "8613800000001", "pin": "123456", "sms_ordering": True, "order_days": "",
         "balance_cents": 500000, "credit_cents": 0, "balance_low_cents": 50000,
         "value_band": "A", **common},
        {"account_no": "R1002", "role": "retailer", "name": "李家小卖部",
         "phone": "8613800000002", "pin": "123456", "sms_ordering": True,
         "order_days": "1,4", "order_window_start": "08:00", "order_window_end": "18:00",
         "balance_cents": 80000, "credit_cents": 50000, "balance_low_cents": 20000,
         "value_band": "B", **common},
        {"account_no": "R1003", "role": "retailer", "name": "王氏烟酒行",
         "phone": "8613800000003", "pin": "123456", "sms_ordering": False,
         "balance_cents": 100000, "value_band": "B", **common},
        # Not registered yet: the PIN was issued on paper; REG R1004 654321 binds a phone.
        {"account_no": "R1004", "role": "retailer", "name": "赵家超市", "phone": None,
         "pin": "654321", "sms_ordering": True, "balance_cents": 200000, "value_band": "C",
         **common},
        {"account_no": "S3001", "role": "subscriber", "name": "陈小姐",
         "phone": "8613700000001", "pin": "111111", "balance_cents": 12345,
         "last_bill_cents": 8800, "last_bill_due": today + timedelta(days=10),
         "region": "昆明", "lang": "zh"},
        {"account_no": "S3002", "role": "subscriber", "name": "Mr Liu",
         "phone": "8613700000002", "pin": "222222", "balance_cents": -2050,
         "last_bill_cents": 15600, "last_bill_due": today + timedelta(days=3),
         "region": "昆明", "lang": "en"},
    ]


def load_demo_data(conn: Connection, *, now: datetime) -> dict[str, Any]:
    """Load the demo rows missing from the database; returns a print-friendly summary:
    {"created": {...counts}, "products": [...], "accounts": [...], "topics": [...]}."""
    created = {"products": 0, "accounts": 0, "topics": 0, "engagements": 0}

    have = set(conn.execute(sa.select(products.c.code)).scalars())
    for code, zh, en, price, cost, max_qty, stock, active in PRODUCTS:
        if code not in have:
            product_repo.insert(
                conn, code=code, name_zh=zh, name_en=en, price_cents=price, cost_cents=cost,
                max_qty=max_qty, stock_qty=stock, active=active)
            created["products"] += 1

    have = set(conn.execute(sa.select(topics.c.code)).scalars())
    for code, zh, en, public in TOPICS:
        if code not in have:
            conn.execute(topics.insert().values(code=code, name_zh=zh, name_en=en,
                                                public=public, active=True))
            created["topics"] += 1

    manager_id: int | None = None
    summary_accounts = []
    for spec in _accounts(now):
        spec = dict(spec)
        pin = spec.pop("pin")
        if spec["phone"] is not None:  # through the one normaliser, like every entry point
            spec["phone"] = canonical(spec["phone"])
        row = accounts.by_account_no(conn, spec["account_no"])
        if row is None:
            if spec["role"] == "retailer":
                spec["manager_id"] = manager_id
            account_id = accounts.create(conn, now=now, pin_hash=hash_pin(pin), **spec)
            created["accounts"] += 1
        else:
            account_id = row.id
        if spec["role"] == "manager":
            manager_id = account_id
        summary_accounts.append({
            "account_no": spec["account_no"], "role": spec["role"], "name": spec["name"],
            "phone": spec["phone"] or "(not registered)", "pin": pin,
        })

    for spec in ENGAGEMENTS:
        if engagement_store.by_keyword(conn, spec["keyword"]) is None:
            eid = engagement_store.create(conn, lang="zh", now=now, open_to_all=True, **spec)
            engagement_store.update(conn, eid, now=now, status="running", started_at=now)
            created["engagements"] += 1

    return {
        "created": created,
        "products": [f"{c} {zh} / {en} {p / 100:.2f}{'' if a else ' (inactive)'}"
                     for c, zh, en, p, _, _, _, a in PRODUCTS],
        "accounts": summary_accounts,
        "topics": [f"{c} {zh} / {en}{'' if pub else ' (registered only)'}"
                   for c, zh, en, pub in TOPICS],
        "engagements": [f"{e['keyword']}: {e['kind']} {e['name']} (text {e['keyword']} "
                        "to answer)" for e in ENGAGEMENTS],
    }
