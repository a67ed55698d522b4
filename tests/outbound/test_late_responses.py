"""Late submit_sm_resp (issue 8) and an SMSC that hangs past twice the response timeout
(issue 9): the gateway against the real simulator with its delay / withhold faults.

A response that arrives after the timeout still means the SMSC accepted the message: the
message must end with its true state (delivered, flagged possibly_duplicate when it was
retried) and every receipt whose id the SMSC told us must match.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.app import Gateway
from store import outbound
from tests.outbound.test_dispatch import all_in, running, settings, statuses
from tests.test_e2e import wait_until

TIMEOUT = 0.4  # the gateway's response timeout in these tests


async def pending_receipts(gw: Gateway) -> list[str]:
    assert gw.store is not None
    return await gw.store.read(lambda c: list(c.exec_driver_sql(
        "SELECT smsc_message_id FROM pending_receipts").scalars()))


async def message(gw: Gateway, mt_id: int) -> dict[str, Any]:
    assert gw.store is not None
    found = await gw.store.read(lambda c: outbound.get_message(c, mt_id))
    assert found is not None
    return found


async def test_late_response_while_the_retry_is_in_flight(db_url: str) -> None:
    # First attempt answered at 1.5×timeout: the retry (sent at 1×) is answered at once,
    # then the first answer comes late. Both copies reached the handset: both ids recorded.
    async with running(settings(db_url, response_timeout=TIMEOUT)) as gw:
        sim = gw.simulator
        sim.faults.delay(TIMEOUT * 1.5)
        mt = await gw.enqueue("8613800000101", "late but accepted")
        inbox = await sim.wait_for_inbox("8613800000101", 2, timeout=10)
        assert [m.text for m in inbox] == ["late but accepted"] * 2
        await wait_until(lambda: all_in(gw, [mt], {"delivered"}), timeout=10)
        await asyncio.sleep(TIMEOUT)  # the late response has arrived and been recorded
        found = await message(gw, mt)
        assert found["status"] == "delivered" and found["possibly_duplicate"]
        ids = {p["smsc_message_id"] for p in found["parts_detail"]}
        assert ids == {m.message_ids[0] for m in inbox}  # primary + earlier copy
        assert {p["status"] for p in found["parts_detail"]} == {"delivered"}
        assert await pending_receipts(gw) == []
        assert any("late submit_sm_resp" in (e["detail"] or "") for e in found["events"])


async def test_smsc_hanging_past_twice_the_timeout(db_url: str) -> None:
    # Every submit (first attempts and retries) is answered 3×timeout late: each in-flight
    # MT times out twice and is failed for want of a response; then both answers arrive.
    phones = [f"86138000002{i:02d}" for i in range(4)]
    async with running(settings(db_url, response_timeout=TIMEOUT)) as gw:
        sim = gw.simulator
        sim.faults.delay(TIMEOUT * 3, count=2 * len(phones))
        ids = [await gw.enqueue(p, f"hang {p}") for p in phones]
        for p in phones:
            inbox = await sim.wait_for_inbox(p, 2, timeout=10)
            assert [m.text for m in inbox] == [f"hang {p}"] * 2
        await wait_until(lambda: all_in(gw, ids, {"delivered"}), timeout=15)
        await wait_until(lambda: _no_pending(gw), timeout=5)
        found = await statuses(gw, ids)
        assert all(r["possibly_duplicate"] for r in found.values())
        assert all(r["error_text"] is None for r in found.values())
        for mt in ids:
            detail = await message(gw, mt)
            statuses_seen = [e["status"] for e in detail["events"]]
            assert "failed" in statuses_seen  # it was failed for want of a response ...
            assert statuses_seen[-1] == "delivered"  # ... and then got its true state
            assert len(detail["parts_detail"]) == 2  # both submissions' ids
        assert sim.faults.list() == []


async def test_late_response_after_failure_without_retry_answer(db_url: str) -> None:
    # The first attempt is answered late (after the retry's timeout); the retry never is
    # (withheld, not accepted). The one copy that reached the handset makes it delivered.
    async with running(settings(db_url, response_timeout=TIMEOUT)) as gw:
        sim = gw.simulator
        sim.faults.delay(TIMEOUT * 3)
        sim.faults.withhold(accept=False)
        mt = await gw.enqueue("8613800000301", "one copy")
        await wait_until(lambda: all_in(gw, [mt], {"delivered"}), timeout=10)
        found = await message(gw, mt)
        assert found["possibly_duplicate"] and found["error_code"] is None
        assert len(found["parts_detail"]) == 1
        assert len(sim.handset("8613800000301").inbox) == 1
        assert await pending_receipts(gw) == []


async def _no_pending(gw: Gateway) -> bool:
    return await pending_receipts(gw) == []
