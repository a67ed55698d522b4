"""Interop with an independent SMPP implementation: smpplib's synchronous Client."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import smpplib.client

from gateway.smpp.text import decode_text, parse_receipt
from simulator import Simulator


def _client_session(port: int, mo_wanted: int, result: dict[str, Any],
                    mo_ready: threading.Event) -> None:
    client = smpplib.client.Client("127.0.0.1", port, timeout=0.2,
                                   allow_unknown_opt_params=True)
    received: list[Any] = []
    client.set_message_received_handler(lambda pdu: received.append(pdu))
    client.set_message_sent_handler(lambda pdu: result.setdefault("submit_resp", pdu))
    try:
        client.connect()
        client.bind_transceiver(system_id="smsgw", password="secret")
        result["bound"] = True
        mo_ready.set()
        client.send_message(source_addr_ton=3, source_addr_npi=1,
                            source_addr="10690", dest_addr_ton=1, dest_addr_npi=1,
                            destination_addr="8613700000001", short_message=b"hello interop",
                            data_coding=0, registered_delivery=1)
        deadline = time.monotonic() + 10
        # read_once() with a short socket timeout sends enquire_link on each idle tick
        # (auto_send_enquire_link); the simulator answers it, which read_once ignores.
        while time.monotonic() < deadline and (len(received) < mo_wanted + 1
                                               or "submit_resp" not in result):
            with contextlib.suppress(TimeoutError):  # socket.timeout
                client.read_once()
        result["received"] = received
        client.unbind()
    except Exception as exc:  # reported to the test, which runs in the loop thread
        result["error"] = repr(exc)
    finally:
        mo_ready.set()
        client.disconnect()


async def test_smpplib_client_binds_submits_gets_mo_and_receipt() -> None:
    from .conftest import sim_config

    async with Simulator(sim_config(receipt_delay=0.1)) as s:
        result: dict[str, Any] = {}
        bound = threading.Event()
        thread = threading.Thread(target=_client_session, args=(s.port, 1, result, bound),
                                  daemon=True)
        thread.start()
        assert await asyncio.to_thread(bound.wait, 5)
        assert "error" not in result, result.get("error")
        await s.inject_mo("8613700000001", "10690", "你好，余额查询")
        await asyncio.to_thread(thread.join, 15)
        assert not thread.is_alive()
        assert "error" not in result, result.get("error")

        message_id = result["submit_resp"].message_id.decode()
        pdus = result["received"]
        receipts = [p for p in pdus if p.esm_class & 0x04]
        mos = [p for p in pdus if not p.esm_class & 0x04]
        assert len(receipts) == 1 and len(mos) == 1
        rc = parse_receipt(receipts[0].short_message.decode())
        assert rc is not None and rc.id == message_id and rc.stat == "DELIVRD"
        assert receipts[0].receipted_message_id.decode() == message_id
        assert receipts[0].message_state == 2
        mo = mos[0]
        assert mo.data_coding == 8
        assert decode_text(mo.short_message, 8) == "你好，余额查询"
        assert mo.source_addr.decode() == "8613700000001"
        [msg] = await s.wait_for_inbox("8613700000001", 1)
        assert msg.text == "hello interop"
