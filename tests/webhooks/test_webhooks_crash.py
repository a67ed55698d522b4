"""A gateway SIGKILLed between the callback's commit and its delivery: after the restart the
callback still goes out, with the same Idempotency-Key (the gateway as its own process, the
process runner of benchmarks/chaos.py)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from store import admin, webhooks
from store.store import Store
from tests.webhooks.receiver import OK, Receiver

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import chaos
from _bench import REPO


class EmbeddedGateway(chaos.GatewayProcess):
    """`smsgw up` with its bundled simulator (no SMSC process needed here)."""

    async def start(self, timeout: float = 60.0) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "up", "--database-url", self.url,
                "--api-port", str(self.api_port), cwd=str(REPO), env=self.env(),
                stdout=out, stderr=asyncio.subprocess.STDOUT)
        await self.wait_ready(timeout)


@pytest.mark.timeout(120)
async def test_callback_survives_sigkill_between_commit_and_delivery(
        db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    # The first attempt hangs (the gateway is killed while it waits); later ones succeed.
    receiver.responses = [(200, "application/json", "{}", 20.0), OK]
    store = await asyncio.to_thread(Store.open, db_url)
    _, key = store.run(lambda c: admin.create_api_key(c, name="crash", role="admin",
                                                      now=datetime.now(UTC)))
    env = {"SMSGW_SIM_PORT": "0", "SMSGW_SIM_CONTROL_PORT": "0", "SMSGW_SIM_RECEIPT_DELAY":
           "0.05", "SMSGW_WEBHOOK_TIMEOUT": "30", "SMSGW_WEBHOOK_POLL_INTERVAL": "0.05"}
    gw = EmbeddedGateway(db_url, 0, tmp_path, env=env)
    await gw.start()
    try:
        async with httpx.AsyncClient(base_url=gw.base, timeout=10,
                                     headers={"Authorization": f"Bearer {key}"}) as api:
            r = await api.post("/messages", json={"to": "8613800000066", "text": "hi",
                                                  "callback_url": receiver.url + "/cb"})
            assert r.status_code == 202, r.text
            mt_id = r.json()["id"]
        assert await asyncio.to_thread(receiver.first_seen.wait, 30), gw.tail()
        gw.kill()  # the callback is committed and claimed; its answer never arrives
        await gw.wait()
        row = store.run(lambda c: webhooks.list_deliveries(c))[0]
        assert row["status"] == "delivering" and row["delivered_at"] is None
        await gw.start()  # same instance: its claims are released at start
        deadline = time.monotonic() + 30
        while store.run(lambda c: webhooks.list_deliveries(c))[0]["status"] != "delivered":
            assert time.monotonic() < deadline, gw.tail()
            await asyncio.sleep(0.1)
    finally:
        await gw.terminate()
        await store.close()
    assert len(receiver.seen) >= 2
    keys = {s.headers["Idempotency-Key"] for s in receiver.seen}
    assert keys == {f"mt-{mt_id}-delivered"}
    assert json.loads(receiver.seen[-1].body)["status"] == "delivered"
