"""Receipt deadline against the simulator: a receipt that never comes is followed up with
query_sm (which may reveal DELIVRD), else the message ends `unknown`, readable in the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.config import Settings
from simulator.faults import fault_for_number
from store import admin, outbound

TO = "8613800000071"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = Gateway(Settings(
        database_url=f"sqlite:///{tmp_path / 'gw.db'}", sim_port=0, sim_control_port=0,
        api_port=0, smpp_server_port=None, sim_receipt_delay=0.05, poll_interval=0.05,
        instance="followup", receipt_deadline=0.6, receipt_grace=0.6,
        receipt_check_interval=0.1))
    await gateway.start()
    try:
        await asyncio.wait_for(gateway.client.wait_bound(), 10)
        yield gateway
    finally:
        await gateway.stop()


async def _api_message(gw: Gateway, mt_id: int) -> dict[str, Any]:
    _, key = await gw.store.write(lambda c: admin.create_api_key(
        c, name="t", role="viewer", now=datetime.now(UTC)))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.api_port}", timeout=10,
                                 headers={"Authorization": f"Bearer {key}"}) as api:
        r = await api.get(f"/messages/{mt_id}")
        assert r.status_code == 200, r.text
        return r.json()


async def _wait_status(gw: Gateway, mt_id: int, wanted: str, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.05)):
        found = await gw.store.read(lambda c: outbound.get_message(c, mt_id))
        if found is not None and found["status"] == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"mt={mt_id} is {found and found['status']}, not {wanted}")


def _history(message: dict[str, Any]) -> str:
    return repr(message)


async def test_lost_receipt_found_by_query_sm(gw: Gateway) -> None:
    gw.simulator.faults.add({"kind": "no_receipt"})
    mt_id = await gw.enqueue(TO, "receipt lost in the SMSC")
    await _wait_status(gw, mt_id, "submitted")
    await asyncio.sleep(0.3)  # well past the simulator's receipt delay: none came
    assert (await gw.store.read(lambda c: outbound.get_message(c, mt_id)))["status"] \
        == "submitted"
    await _wait_status(gw, mt_id, "delivered")
    message = await _api_message(gw, mt_id)
    assert message["status"] == "delivered"
    assert "query_sm part 1/1: delivered" in _history(message)


async def test_forgotten_message_ends_unknown(gw: Gateway) -> None:
    gw.simulator.faults.add({"kind": "no_receipt", "forget": True})
    mt_id = await gw.enqueue(TO, "the SMSC restarted and forgot it")
    await _wait_status(gw, mt_id, "unknown")
    message = await _api_message(gw, mt_id)
    assert message["status"] == "unknown"
    assert "deadline part 1/1: unknown" in _history(message)
    # A message whose receipt comes is untouched by the follow-up.
    ok = await gw.enqueue(TO, "normal")
    await _wait_status(gw, ok, "delivered")
    assert "query_sm" not in _history(await _api_message(gw, ok))


def test_reserved_numbers_arm_no_receipt() -> None:
    assert fault_for_number("8699908", "86999") == fault_for_number("8699908123", "86999")
    spec = fault_for_number("8699909", "86999")
    assert spec is not None and spec.kind == "no_receipt" and spec.forget
