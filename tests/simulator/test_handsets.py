"""Virtual handsets: long MTs arrive as concatenated parts, in any order, and are joined."""

from __future__ import annotations

import random

from gateway.smpp import status as st
from gateway.smpp.text import DC_GSM7, DC_UCS2, split_text
from simulator import Simulator
from simulator.handsets import HandsetBook

from .conftest import bind, submit_params

GSM_LONG = ("Order 1234 confirmed: 1001*5, 1002*3. Total 456.00. Funds OK. "
            "Delivery on Tuesday between 9 and 12. Reply HELP for help. ") * 4 + "{€}"
CHINESE_LONG = "您的订单123456已收到：可口可乐500毫升×5，雪碧×3，合计人民币四百五十六元。" * 5


async def _send_parts(sim: Simulator, dest: str, text: str, shuffle: bool) -> list[str]:
    conn, _ = await bind(sim)
    split = split_text(text, ref=77)
    parts = list(split.parts)
    if shuffle:
        random.Random(3).shuffle(parts)
    ids = []
    for part in parts:
        r = await conn.request("submit_sm", submit_params(
            dest, part, dc=split.data_coding, esm_class=split.esm_class,
            registered_delivery=0))
        assert r.status == st.ESME_ROK
        ids.append(r.params["message_id"])
    return ids


async def test_long_gsm_text_reassembled(sim: Simulator) -> None:
    ids = await _send_parts(sim, "8613900000001", GSM_LONG, shuffle=False)
    assert len(ids) >= 3
    [msg] = await sim.wait_for_inbox("8613900000001", 1)
    assert msg.text == GSM_LONG
    assert (msg.parts, msg.data_coding, msg.source_addr) == (len(ids), DC_GSM7, "10690")
    assert list(msg.message_ids) == ids


async def test_long_chinese_text_out_of_order_reassembled(sim: Simulator) -> None:
    ids = await _send_parts(sim, "8613900000002", CHINESE_LONG, shuffle=True)
    assert len(ids) >= 3
    [msg] = await sim.wait_for_inbox("8613900000002", 1)
    assert msg.text == CHINESE_LONG
    assert msg.data_coding == DC_UCS2
    assert sorted(msg.message_ids) == sorted(ids)


async def test_inbox_since_and_clear(sim: Simulator) -> None:
    conn, _ = await bind(sim)
    for t in (b"one", b"two", b"three"):
        await conn.request("submit_sm", submit_params("8613900000003", t, registered_delivery=0))
    msgs = await sim.wait_for_inbox("8613900000003", 3)
    h = sim.handset("8613900000003")
    assert [m.text for m in h.messages(since=msgs[0].id)] == ["two", "three"]
    assert h.clear() == 3 and h.inbox == []


def test_redelivered_part_does_not_duplicate() -> None:
    book = HandsetBook()
    h = book.get("1")
    split = split_text("x" * 200, ref=5)
    from gateway.smpp.text import parse_udh

    for i, part in enumerate([*split.parts, split.parts[1]]):
        info, payload = parse_udh(part, split.esm_class)
        h.receive(source_addr="s", payload=payload, data_coding=0, message_id=f"m{i}",
                  concat=info, now=1.0)
    assert [m.text for m in h.inbox] == ["x" * 200]


async def test_identical_long_messages_reusing_a_reference_both_arrive(sim: Simulator) -> None:
    # Issue 8: the second message (same ref 77, same text) was acknowledged with DELIVRD but
    # silently never reached the inbox, taken as a redelivery of the first.
    first = await _send_parts(sim, "8613900000004", GSM_LONG, shuffle=False)
    second = await _send_parts(sim, "8613900000004", GSM_LONG, shuffle=False)
    msgs = await sim.wait_for_inbox("8613900000004", 2)
    assert [m.text for m in msgs] == [GSM_LONG, GSM_LONG]
    assert [list(m.message_ids) for m in msgs] == [first, second]
    assert sim.handset("8613900000004").incomplete == 0


def test_inbox_limit_forgets_the_oldest_and_idle_handsets() -> None:
    """A long load test must not grow the simulator without bound: past the limit the
    oldest messages go, and a handset left with nothing goes with them."""
    book = HandsetBook(inbox_limit=3)
    for n in range(5):
        book.get(f"86150{n:08d}").receive(source_addr="10690", payload=f"m{n}".encode(),
                                          data_coding=0, message_id=str(n))
    assert book.forgotten == 2 and len(book) == 3
    assert "8615000000000" not in book and "8615000000004" in book
    assert [m.text for h in book for m in h.inbox] == ["m2", "m3", "m4"]
    # One handset's newest messages stay while its oldest go.
    busy = book.get("8613900000009")
    for n in range(4):
        busy.receive(source_addr="10690", payload=f"b{n}".encode(), data_coding=0,
                     message_id=f"b{n}")
    assert [m.text for m in busy.inbox] == ["b1", "b2", "b3"] and len(book) == 1
    # A handset still reassembling a long message is kept even with an empty inbox.
    from gateway.smpp.text import parse_udh

    split = split_text("y" * 200, ref=9)
    info, payload = parse_udh(split.parts[0], split.esm_class)
    waiting = book.get("8613900000010")
    waiting.receive(source_addr="10690", payload=payload, data_coding=0, message_id="p1",
                    concat=info)
    for n in range(3):
        busy.receive(source_addr="10690", payload=b"z", data_coding=0, message_id=f"z{n}")
    assert "8613900000010" in book


def test_no_inbox_limit_keeps_everything() -> None:
    book = HandsetBook(inbox_limit=None)
    for n in range(50):
        book.get(f"86150{n:08d}").receive(source_addr="10690", payload=b"m",
                                          data_coding=0, message_id=str(n))
    assert len(book) == 50 and book.forgotten == 0
