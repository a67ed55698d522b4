"""Idempotency-Key on POST /messages and /messages/bulk, through HTTP, SQLite and PostgreSQL:
a retry (the first answer lost) gets the first answer and creates nothing; the audit row
commits with the change."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.app import Gateway
from store import admin
from store.models import audit_log, outbound_messages
from tests.api.conftest import Api, assert_error

TO = "8613800000001"


async def _count(gw: Gateway, table: sa.Table, *where: Any) -> int:
    return await gw.store.read(lambda c: c.execute(
        sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


async def test_retry_returns_the_first_answer_and_queues_nothing(gw: Gateway, api: Api) -> None:
    body = {"to": TO, "text": "your code is ready"}
    headers = {"Idempotency-Key": "order-1001-notice"}
    first = await api.operator.post("/messages", json=body, headers=headers)
    # The client never saw that answer (a crash, a dropped connection): it sends again.
    again = await api.operator.post("/messages", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await _count(gw, outbound_messages) == 1
    assert await _count(gw, audit_log, audit_log.c.resource == "message") == 1
    # Another body under the same key is refused (IETF draft §2.7: 422), nothing queued.
    other = await api.operator.post("/messages", json={**body, "text": "other"},
                                    headers=headers)
    assert_error(other, 422, "idempotency_key_reused")
    # Keys are per API key: the admin's "order-1001-notice" is its own.
    theirs = await api.admin.post("/messages", json=body, headers=headers)
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    # Without a key every POST is a new message, as before.
    plain = [await api.operator.post("/messages", json=body) for _ in range(2)]
    assert plain[0].json()["id"] != plain[1].json()["id"]
    assert await _count(gw, outbound_messages) == 4


async def test_key_expires(gw: Gateway, api: Api) -> None:
    gw.settings.idempotency_ttl = 0.3
    body, headers = {"to": TO, "text": "hello"}, {"Idempotency-Key": "k1"}
    first = await api.operator.post("/messages", json=body, headers=headers)
    await asyncio.sleep(0.5)
    later = await api.operator.post("/messages", json=body, headers=headers)
    assert first.status_code == later.status_code == 202
    assert later.json()["id"] != first.json()["id"]


async def test_bulk_retry_returns_the_first_answer(gw: Gateway, api: Api) -> None:
    body = {"to": [TO, "8613800000002", "not a number"], "text": "price list"}
    headers = {"Idempotency-Key": "bulk-2024-01"}
    first = await api.operator.post("/messages/bulk", json=body, headers=headers)
    again = await api.operator.post("/messages/bulk", json=body, headers=headers)
    assert first.status_code == again.status_code == 207
    assert again.json() == first.json() and first.json()["queued"] == 2
    assert await _count(gw, outbound_messages) == 2
    assert await _count(gw, audit_log, audit_log.c.resource == "message") == 1
    assert_error(await api.operator.post("/messages/bulk", json={**body, "text": "x"},
                                         headers=headers), 422, "idempotency_key_reused")


async def test_audit_row_commits_with_the_send(gw: Gateway, api: Api,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An audit row that cannot be written takes the send with it: never a message without
    its audit row (a failure we cannot cause for real, hence the patch)."""
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit write failed")

    monkeypatch.setattr(admin, "audit", broken)
    r = await api.operator.post("/messages", json={"to": TO, "text": "x"},
                                headers={"Idempotency-Key": "k-audit"})
    assert r.status_code == 500
    r = await api.operator.post("/messages/bulk", json={"to": [TO], "text": "x"})
    assert r.status_code == 500
    assert await _count(gw, outbound_messages) == 0
    monkeypatch.undo()
    # Nothing was stored under the key either: the retry does the work now.
    r = await api.operator.post("/messages", json={"to": TO, "text": "x"},
                                headers={"Idempotency-Key": "k-audit"})
    assert r.status_code == 202 and "Idempotent-Replayed" not in r.headers
    assert await _count(gw, outbound_messages) == 1
