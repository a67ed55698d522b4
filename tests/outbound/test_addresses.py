"""TON/NPI of the addresses we send (gateway/smpp/address.py): a canonical phone goes out as
international/ISDN, a name as alphanumeric, a service number as "unknown" (the SMSC's
account settings decide) - never all of them 0/0 for the SMSC to guess."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from gateway.smpp.address import ALPHANUMERIC, INTERNATIONAL, UNKNOWN, ton_npi
from store import outbound
from tests.outbound.test_dispatch import running, settings
from tests.test_e2e import wait_until


def test_the_rule() -> None:
    assert ton_npi("8613800000001", numeric=INTERNATIONAL) == (1, 1)
    assert ton_npi("+8613800000001", numeric=INTERNATIONAL) == (1, 1)
    assert ton_npi("10690") == UNKNOWN
    assert ton_npi("106901234567890123") == UNKNOWN  # an SP number, not E.164
    assert ton_npi("Shop") == ton_npi("MyShop 24") == ALPHANUMERIC == (5, 0)
    assert ton_npi("") == UNKNOWN
    assert ton_npi("１２３", numeric=INTERNATIONAL) == ALPHANUMERIC  # not ASCII digits


async def test_submit_sm_says_what_its_addresses_are(db_url: str) -> None:
    async with running(settings(db_url)) as gw:
        assert gw.simulator is not None
        seen: list[dict[str, Any]] = []
        on_request = gw.simulator.on_request

        async def recording(conn: Any, pdu: Any) -> Any:  # the real handler, watched
            if pdu.command == "submit_sm":
                seen.append(dict(pdu.params))
            return await on_request(conn, pdu)

        # Connections call handler.on_request at each request: the instance attribute wins.
        gw.simulator.on_request = recording  # type: ignore[method-assign]
        now = datetime.now(UTC)
        assert gw.store is not None
        await gw.store.write(lambda c: [
            outbound.enqueue_mt(c, dest_addr="8613800000001", text="from the short code",
                                priority=3, now=now, source_addr="10690"),
            outbound.enqueue_mt(c, dest_addr="4915112345678", text="from a name",
                                priority=3, now=now, source_addr="Shop")])
        gw.dispatcher.wake()
        await wait_until(lambda: len(seen) >= 2)
        by_dest = {p["destination_addr"]: p for p in seen}
        cn, de = by_dest["8613800000001"], by_dest["4915112345678"]
        assert (cn["dest_addr_ton"], cn["dest_addr_npi"]) == (1, 1)
        assert (cn["source_addr_ton"], cn["source_addr_npi"]) == (0, 0)
        assert (de["dest_addr_ton"], de["dest_addr_npi"]) == (1, 1)
        assert (de["source_addr_ton"], de["source_addr_npi"]) == (5, 0)
        # The simulator read the international hint: both reached their handsets.
        await asyncio.wait_for(gw.simulator.wait_for_inbox("8613800000001"), 10)
        await asyncio.wait_for(gw.simulator.wait_for_inbox("4915112345678"), 10)
