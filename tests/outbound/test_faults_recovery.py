"""The gateway against the simulator's faults (issue 9 item 4): for each fault, the gateway
recovers and loses nothing: every accepted MT ends delivered, any that reached its handset
twice is flagged possibly_duplicate, and an MO is processed exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.app import Gateway
from tests.outbound.test_dispatch import all_in, running, settings, statuses
from tests.test_e2e import wait_until

TIMEOUT = 0.5
PHONES = [f"86138000005{i:02d}" for i in range(8)]


async def send_and_check(gw: Gateway, fault: dict[str, Any] | None, *,
                         after: int = 3) -> dict[int, dict[str, Any]]:
    """Queue one message per phone, arm ``fault`` for the ``after``-th destination (so it
    fires mid-window), then require every message delivered, duplicates flagged."""
    sim = gw.simulator
    if fault is not None:
        sim.faults.add({**fault, "to": PHONES[after]})
    ids = [await gw.enqueue(p, f"msg to {p}") for p in PHONES]
    await wait_until(lambda: all_in(gw, ids, {"delivered"}), timeout=30)
    found = await statuses(gw, ids)
    for mt, phone in zip(ids, PHONES, strict=True):
        copies = [m for m in sim.handset(phone).inbox if m.text == f"msg to {phone}"]
        assert copies, f"mt={mt} never reached {phone}"
        if len(copies) > 1:
            assert found[mt]["possibly_duplicate"], f"mt={mt} doubled silently"
    assert sim.faults.list() == []  # the fault did fire
    return found


@pytest.mark.parametrize("fault", [
    {"kind": "drop"},
    {"kind": "drop", "accept": False},
    {"kind": "unbind"},
    {"kind": "malformed", "variant": "short_length"},
    {"kind": "malformed", "variant": "long_length"},
    {"kind": "malformed", "variant": "unknown_command"},
    {"kind": "malformed", "variant": "truncated_body"},
    {"kind": "status", "status": "ESME_RMSGQFUL", "count": 3},
    {"kind": "status", "status": "ESME_RTHROTTLED", "count": 5},
    {"kind": "withhold"},
    {"kind": "stop_reading", "seconds": TIMEOUT * 3},
], ids=lambda f: "-".join(str(v) for v in f.values()))
async def test_gateway_recovers_from_submit_fault(db_url: str, fault: dict[str, Any]) -> None:
    async with running(settings(db_url, response_timeout=TIMEOUT)) as gw:
        await send_and_check(gw, fault)


async def test_binds_refused_for_a_while(db_url: str) -> None:
    async with running(settings(db_url, response_timeout=TIMEOUT)) as gw:
        sim = gw.simulator
        binds = gw.client.binds
        sim.faults.refuse_binds(1.0)
        sim.drop_connections()
        await asyncio.sleep(0.3)
        assert not gw.client.bound  # refused meanwhile
        await send_and_check(gw, None)
        assert gw.client.binds == binds + 1
        assert sim.stats()["binds"]["refused_total"] >= 1


async def test_deliver_sm_before_the_bind_completes(db_url: str) -> None:
    async with running(settings(db_url, response_timeout=TIMEOUT)) as gw:
        sim = gw.simulator
        sim.faults.add({"kind": "deliver_before_bind", "from": "8613800000577",
                        "text": "HELP"})
        sim.drop_connections()
        await wait_until(lambda: _mo_count(gw, "8613800000577", 1), timeout=15)
        await asyncio.sleep(0.3)
        assert await _mo_count(gw, "8613800000577", 1)  # once, not twice
        assert sim.stats()["mo"]["delivered"] == 1


async def _mo_count(gw: Gateway, source: str, expected: int) -> bool:
    assert gw.store is not None
    n = await gw.store.read(lambda c: c.exec_driver_sql(
        "SELECT count(*) FROM inbound_messages WHERE source_addr = ?"
        if c.dialect.name == "sqlite" else
        "SELECT count(*) FROM inbound_messages WHERE source_addr = %s",
        (source,)).scalar_one())
    return int(n) == expected
