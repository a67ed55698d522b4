"""API keys and bind passwords are never in clear in the logs (DEBUG included), in any API
read, or in the database, after a walkthrough that uses each of them, right and wrong."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from commands.pins import hash_password
from gateway import api_keys_cli
from gateway.app import Gateway
from gateway.config import Settings
from gateway.smpp import status as st
from store import upstream
from store.models import metadata
from tests.test_bind_security import bind

BIND_PASSWORD, WRONG_BIND_PASSWORD, SMSC_PASSWORD = "bindPw1", "wrongPw9", "smscPw7"


async def test_no_key_or_password_in_logs_api_reads_or_database(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    gw = Gateway(Settings(
        database_url=f"sqlite:///{tmp_path / 'walk.db'}", sim_port=0, sim_control_port=0,
        api_port=0, smpp_server_port=0, sim_receipt_delay=0.05, poll_interval=0.05,
        smsc_password=SMSC_PASSWORD, instance="secrets", auth_max_failures=3))
    await gw.start()
    secrets: list[str] = [BIND_PASSWORD, WRONG_BIND_PASSWORD, SMSC_PASSWORD]
    reads: list[str] = []
    try:
        await asyncio.wait_for(gw.client.wait_bound(), 10)
        first = await api_keys_cli.first_start_key(gw.store)
        assert first is not None
        secrets.append(first.key)
        base = f"http://127.0.0.1:{gw.api_port}"
        async with httpx.AsyncClient(base_url=base, timeout=20, headers={
                "Authorization": f"Bearer {first.key}"}) as api:
            r = await api.post("/api-keys", json={"name": "ops", "role": "operator"})
            assert r.status_code == 201
            secrets.append(r.json()["key"])
            wrong = "smsgw_" + "W" * 43
            secrets.append(wrong)
            async with httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {wrong}"},
                    transport=httpx.AsyncHTTPTransport(local_address="127.0.0.8")) as bad:
                for _ in range(4):  # into the lockout: its log line names the source only
                    assert (await bad.get("/stats")).status_code in (401, 429)
            await gw.store.write(lambda c: upstream.create_account(
                c, system_id="crm", password_hash=hash_password(BIND_PASSWORD),
                now=datetime.now(UTC)))
            port = gw.upstream_server.port
            assert (await bind(port, "crm", BIND_PASSWORD, source="127.0.0.6"))[0] \
                == st.ESME_ROK
            assert (await bind(port, "crm", WRONG_BIND_PASSWORD, source="127.0.0.7"))[0] \
                == st.ESME_RBINDFAIL
            # Every read without a path parameter, as admin.
            schema = (await api.get("/openapi.json")).json()
            for path, ops in schema["paths"].items():
                if "get" in ops and "{" not in path and path != "/openapi.json":
                    resp = await api.get(path)
                    assert resp.status_code == 200, (path, resp.text)
                    reads.append(f"{path}: {resp.text}")
            assert any(p.startswith("/audit-log:") for p in reads)
    finally:
        await gw.stop()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'walk.db'}")
    with engine.connect() as conn:
        dump = "\n".join(f"{t.name}: {row}" for t in metadata.sorted_tables
                         for row in conn.execute(sa.select(t)))
    engine.dispose()
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "auth lockout kind=api" in logs and "bind refused system_id=crm" in logs
    assert "api_keys:" in dump and "upstream_accounts:" in dump
    for secret in secrets:
        assert secret not in logs, f"{secret!r} in the logs"
        assert secret not in dump, f"{secret!r} in the database"
        for read in reads:
            assert secret not in read, f"{secret!r} in {read[:80]}"
