"""Admin API tests: a real Gateway (bundled simulator, ephemeral ports) and HTTP over
loopback with httpx, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.config import Settings
from store import admin

SHORT_CODE = "10690"


def make_settings(db_url: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        database_url=db_url, sim_port=0, sim_control_port=0, api_port=0,
        sim_receipt_delay=0.05, poll_interval=0.1, reconnect_min=0.05, reconnect_max=0.5,
        source_addr=SHORT_CODE, instance="api-test", smpp_server_port=None,
        rate_limit_messages=1000)
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
async def gw(db_url: str) -> AsyncIterator[Gateway]:
    gateway = Gateway(make_settings(db_url))
    await gateway.start()
    try:
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        yield gateway
    finally:
        await gateway.stop()


@dataclass
class Api:
    """One httpx client per role, plus an anonymous one."""

    base: str
    keys: dict[str, str]
    key_ids: dict[str, int]
    anon: httpx.AsyncClient
    admin: httpx.AsyncClient
    operator: httpx.AsyncClient
    viewer: httpx.AsyncClient


@pytest.fixture
async def api(gw: Gateway) -> AsyncIterator[Api]:
    now = datetime.now(UTC)
    keys: dict[str, str] = {}
    ids: dict[str, int] = {}
    for role in ("admin", "operator", "viewer"):
        key_id, key = await gw.store.write(
            lambda c, r=role: admin.create_api_key(c, name=f"test-{r}", role=r, now=now))
        keys[role], ids[role] = key, key_id
    base = f"http://127.0.0.1:{gw.api_port}"

    def client(key: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=base, timeout=20, headers=headers)

    clients = [client(None), client(keys["admin"]), client(keys["operator"]),
               client(keys["viewer"])]
    try:
        yield Api(base, keys, ids, *clients)
    finally:
        for c in clients:
            await c.aclose()


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is our JSON error shape with this status (and code)."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err["code"], str) and isinstance(err["message"], str), err
    if code is not None:
        assert err["code"] == code, err
    return err
