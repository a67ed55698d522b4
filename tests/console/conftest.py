"""Console fixtures: a real gateway (bundled simulator, demo data, ephemeral ports) and
console users of each role, logged in over HTTP like a browser."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from commands.demo import load_demo_data
from gateway.app import Gateway
from store import users
from tests.api.conftest import make_settings

PASSWORD = "correct horse battery"
ROLES = ("admin", "operator", "viewer")


@pytest.fixture
async def console_gw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    gateway = Gateway(make_settings(f"sqlite:///{tmp_path / 'console.db'}",
                                    sim_receipt_delay=0.01, poll_interval=0.05))
    await gateway.start()
    try:
        await gateway.store.write(lambda c: load_demo_data(c, now=datetime.now(UTC)))
        hashed = users.hash_password(PASSWORD)
        for role in ROLES:
            await gateway.store.write(lambda c, r=role: users.create_user(
                c, username=r, password_hash=hashed, role=r, lang="en",
                now=datetime.now(UTC)))
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        yield gateway
    finally:
        await gateway.stop()


def base_url(gw: Gateway) -> str:
    return f"http://127.0.0.1:{gw.api_port}"


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD
                ) -> httpx.Response:
    page = await client.get("/ui/login")
    return await client.post("/ui/login", data={"username": username, "password": password,
                                                "csrf": form_token(page.text)})


@pytest.fixture
async def http(console_gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url(console_gw), timeout=20) as client:
        yield client
