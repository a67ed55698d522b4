"""No keyless admin access by default (loopback is no identity), the explicit insecure-dev
mode, and per-source throttling of wrong API keys — over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.metrics import METRICS
from store import admin
from tests.api.conftest import assert_error, make_settings


@asynccontextmanager
async def running(db_url: str, **overrides: Any) -> AsyncIterator[Gateway]:
    gateway = Gateway(make_settings(db_url, **overrides))
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def client(gw: Gateway, *, key: str | None = None, source: str | None = None
           ) -> httpx.AsyncClient:
    """An HTTP client to the admin API, optionally bound to a local source address (any of
    127.0.0.0/8 is a distinct loopback address on Linux)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.AsyncHTTPTransport(local_address=source) if source else None
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}", headers=headers,
                             transport=transport, timeout=20)


async def new_key(gw: Gateway, role: str = "admin") -> str:
    now = datetime.now(UTC)
    _, key = await gw.store.write(
        lambda c: admin.create_api_key(c, name=f"t-{role}", role=role, now=now))
    return key


async def test_loopback_without_a_key_gets_nothing_even_before_any_key_exists(
        gw: Gateway) -> None:
    # The reverse-proxy attack: every stranger arrives from 127.0.0.1 with no key.
    async with client(gw) as c:
        assert_error(await c.get("/accounts"), 401, "unauthorized")
        err = assert_error(await c.post("/api-keys", json={"name": "x", "role": "admin"}),
                           401, "unauthorized")
        assert "smsgw api-key create" in err["message"]
    assert not await gw.store.read(admin.any_api_key)


async def test_insecure_dev_serves_keyless_requests_and_still_checks_keys(
        db_url: str) -> None:
    async with running(db_url, insecure_dev=True) as gw, client(gw) as c:
        assert (await c.get("/accounts")).status_code == 200
        r = await c.post("/api-keys", json={"name": "dev", "role": "viewer"})
        assert r.status_code == 201, r.text
        audit = (await c.get("/audit-log")).json()["items"]
        assert audit[0]["key_name"] == "insecure-dev"
        # A key that is sent is checked: a wrong one is still refused.
        c.headers["Authorization"] = "Bearer smsgw_wrongwrongwrong"
        assert_error(await c.get("/accounts"), 401, "invalid_key")
        c.headers["Authorization"] = f"Bearer {r.json()['key']}"
        assert_error(await c.post("/messages", json={"to": "8613800000009", "text": "x"}),
                     403, "forbidden")


async def test_wrong_keys_lock_out_their_source_only(
        db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    lockouts = METRICS.auth_lockouts.labels(kind="api", scope="source")
    before = lockouts._value.get()
    async with running(db_url, auth_max_failures=5, auth_lockout=30) as gw:
        good = await new_key(gw, "viewer")
        async with client(gw, source="127.0.0.1") as attacker:
            for i in range(5):
                attacker.headers["Authorization"] = f"Bearer smsgw_guess{i:040d}"
                assert_error(await attacker.get("/accounts"), 401, "invalid_key")
            r = await attacker.get("/accounts")
            err = assert_error(r, 429, "too_many_failures")
            assert 0 < int(r.headers["Retry-After"]) <= 30, r.headers
            assert "127.0.0.1" in err["message"]
            # Locked means locked: even a valid key from that source waits.
            attacker.headers["Authorization"] = f"Bearer {good}"
            assert_error(await attacker.get("/accounts"), 429)
            # Keep hammering: more 429s, still one lockout (one log line, one increment).
            for _ in range(20):
                assert (await attacker.get("/stats")).status_code == 429
        async with client(gw, key=good, source="127.0.0.2") as other:
            assert (await other.get("/accounts")).status_code == 200
            other.headers["Authorization"] = "Bearer smsgw_nothing"
            assert_error(await other.get("/accounts"), 401, "invalid_key")
    lines = [r.getMessage() for r in caplog.records if "auth lockout" in r.getMessage()]
    assert len(lines) == 1 and "kind=api source=127.0.0.1 failures=5" in lines[0], lines
    assert lockouts._value.get() == before + 1


async def test_a_success_clears_earlier_failures(db_url: str) -> None:
    async with running(db_url, auth_max_failures=3) as gw:
        good = await new_key(gw, "viewer")
        async with client(gw) as c:
            for _ in range(10):  # 2 wrong, 1 right, repeatedly: never 3 wrong in a row
                for _ in range(2):
                    c.headers["Authorization"] = "Bearer smsgw_wrong"
                    assert_error(await c.get("/accounts"), 401, "invalid_key")
                c.headers["Authorization"] = f"Bearer {good}"
                assert (await c.get("/accounts")).status_code == 200


async def test_api_key_lookup_is_by_prefix_and_exact(gw: Gateway) -> None:
    key = await new_key(gw, "operator")
    find = admin.find_api_key
    found = await gw.store.read(lambda c: find(c, key))
    assert found is not None and found.role == "operator" and key.startswith(found.prefix)
    # Same prefix, different rest; truncated; foreign format; empty: all unknown.
    for wrong in (key[:-1] + ("A" if key[-1] != "A" else "B"), key[:12], key[:-1],
                  "Bearer " + key, "", "x" * 200):
        assert await gw.store.read(lambda c, w=wrong: find(c, w)) is None, wrong


async def test_a_forged_forwarded_for_does_not_dodge_the_lockout(db_url: str) -> None:
    # By default the TCP peer is the client: X-Forwarded-For from anyone is ignored.
    async with running(db_url, auth_max_failures=3) as gw, client(gw) as c:
        for i in range(3):
            assert_error(await c.get("/accounts", headers={
                "Authorization": "Bearer smsgw_x", "X-Forwarded-For": f"203.0.113.{i}"}),
                401)
        assert_error(await c.get("/accounts", headers={
            "Authorization": "Bearer smsgw_x", "X-Forwarded-For": "203.0.113.99"}), 429)


async def test_behind_a_trusted_proxy_each_forwarded_client_is_its_own_source(
        db_url: str) -> None:
    async with running(db_url, auth_max_failures=3, api_trusted_proxies="127.0.0.1") as gw:
        good = await new_key(gw, "viewer")
        async with client(gw) as proxy:
            stranger = {"X-Forwarded-For": "203.0.113.7"}
            for _ in range(3):
                assert_error(await proxy.get("/accounts", headers={
                    **stranger, "Authorization": "Bearer smsgw_x"}), 401)
            err = assert_error(await proxy.get("/accounts", headers={
                **stranger, "Authorization": f"Bearer {good}"}), 429)
            assert "203.0.113.7" in err["message"]
            # The owner, behind the same proxy, is not locked out.
            r = await proxy.get("/accounts", headers={
                "X-Forwarded-For": "198.51.100.2", "Authorization": f"Bearer {good}"})
            assert r.status_code == 200, r.text
