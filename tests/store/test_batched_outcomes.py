"""Submit responses and receipts applied in batches end exactly as applied one by one.

`outbound.mark_parts_submitted` and `receipts.apply_receipts` (the hot path, fed by
gateway/mt_outcomes.py) against `mark_part_submitted` / `apply_receipt` (the reference): the
same scenario - multi-part messages, a failed part, an earlier copy kept after a retry, a
receipt that overtook its submit response, an unknown id, a hex/decimal spelling - is run
both ways in a transaction each, and the messages, parts, events and parked receipts match.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store import Store, outbound, receipts, upstream
from store.models import message_events, outbound_messages, outbound_parts, pending_receipts
from store.outbound import SubmittedPart
from store.receipts import ReceiptIn
from tests.store.helpers import at, claim, mt


class _Rollback(Exception):
    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot


SUBMITS = [  # (message index, part, parts, smsc id, cost, connection)
    (0, 1, 1, "1100", None, None),
    (1, 1, 3, "2101", 30, "smsc1"),
    (1, 2, 3, "2102", 30, "smsc1"),
    (1, 3, 3, "2103", 30, "smsc1"),
    (2, 1, 2, "3101", None, None),  # its part 2 never answered: stays 'sending'
    (3, 1, 1, "4200", None, None),  # part 1 held 4100 from an earlier submission
    (4, 1, 1, "5100", None, None),  # its receipt came first and was parked
    (5, 1, 1, "6100", 7, "c2"),
]
RECEIPTS = [  # (smsc id as the receipt spells it, state, err)
    ("1100", "delivered", None),
    ("2102", "failed", 11),
    ("2101", "delivered", None),
    ("4100", "delivered", None),  # the earlier copy
    ("999999", "delivered", None),  # never sent: parked
    (format(6100, "x"), "delivered", None),  # hex spelling of a decimal id
    ("1100", "delivered", None),  # a repeat
]


def _scenario(conn: Connection, batched: bool) -> dict[str, Any]:
    ids = [mt(conn, dest_addr=f"861380000000{i}") for i in range(6)]
    assert claim(conn) == ids
    outbound.mark_part_submitted(conn, message_id=ids[3], part_no=1, parts=1,
                                 smsc_message_id="4100", now=at(1))
    receipts.apply_receipt(conn, connection="smsc1", smsc_message_id="5100", state="failed",
                           error_code=5, raw="id:5100 stat:UNDELIV", now=at(1))
    parts = [SubmittedPart(ids[i], p, n, sid, cost, c) for i, p, n, sid, cost, c in SUBMITS]
    items = [ReceiptIn("smsc1", sid, state, err, f"id:{sid}") for sid, state, err in RECEIPTS]
    now = at(2)
    if batched:
        outbound.mark_parts_submitted(conn, parts, now=now)
        found = receipts.apply_receipts(conn, items, now=now)
        upstream.owe_receipts(conn, [m for m in found if m is not None], now=now)
    else:
        for p in parts:
            outbound.mark_part_submitted(
                conn, message_id=p.message_id, part_no=p.part_no, parts=p.parts,
                smsc_message_id=p.smsc_message_id, now=now, cost_millis=p.cost_millis,
                connection=p.connection)
        found = [receipts.apply_receipt(conn, connection=r.connection,
                                        smsc_message_id=r.smsc_message_id, state=r.state,
                                        error_code=r.error_code, raw=r.raw, now=now)
                 for r in items]
    raise _Rollback(_snapshot(conn, ids, found))


def _snapshot(conn: Connection, ids: list[int], found: list[int | None]) -> dict[str, Any]:
    index = {m: i for i, m in enumerate(ids)}
    m, p, e = outbound_messages, outbound_parts, message_events
    messages = [tuple(r) for r in conn.execute(
        sa.select(m.c.status, m.c.parts, m.c.error_code, m.c.cost_millis, m.c.connection,
                  m.c.updated_at).where(m.c.id.in_(ids)).order_by(m.c.id))]
    parts = sorted((index[r.message_id], r.part_no, r.smsc_message_id, r.status, r.error_code,
                    r.submitted_at, r.done_at)
                   for r in conn.execute(sa.select(p).where(p.c.message_id.in_(ids))))
    events: dict[int, list[tuple[str, str | None]]] = {}
    for r in conn.execute(sa.select(e.c.message_id, e.c.status, e.c.detail)
                          .where(e.c.direction == "out", e.c.message_id.in_(ids))
                          .order_by(e.c.id)):
        events.setdefault(index[r.message_id], []).append((r.status, r.detail))
    parked = [tuple(r) for r in conn.execute(
        sa.select(pending_receipts.c.smsc_message_id, pending_receipts.c.state)
        .order_by(pending_receipts.c.id))]
    return {"messages": messages, "parts": parts, "events": events, "parked": parked,
            "found": [None if f is None else index[f] for f in found]}


def _run(store: Store, batched: bool) -> dict[str, Any]:
    with pytest.raises(_Rollback) as caught:
        store.run(lambda c: _scenario(c, batched))
    return caught.value.snapshot


def test_batched_submits_and_receipts_equal_one_by_one(store: Store) -> None:
    one_by_one = _run(store, batched=False)
    batched = _run(store, batched=True)
    assert batched == one_by_one
    # And the scenario says what it should (so equality is not two identical mistakes).
    statuses = [row[0] for row in batched["messages"]]
    # (a delivered earlier copy of its only part delivers message 3)
    assert statuses == ["delivered", "failed", "sending", "delivered", "failed", "delivered"]
    assert batched["found"] == [0, 1, 1, 3, None, 5, 0]
    assert batched["parked"] == [("999999", "delivered")]
    assert (3, -1, "4100", "delivered") in [row[:4] for row in batched["parts"]]
    assert batched["messages"][5][3:5] == (7, "c2")


async def test_batched_events_are_written_through_the_writer(store: Store) -> None:
    """Inside the group-commit writer the events are deferred to the commit: still there,
    in order, after it."""
    ids = store.run(lambda c: [mt(c, dest_addr=f"861390000000{i}") for i in range(3)])
    store.run(lambda c: claim(c))
    await store.write(lambda c: outbound.mark_parts_submitted(
        c, [SubmittedPart(i, 1, 1, f"77{n}") for n, i in enumerate(ids)], now=at(3)))
    await store.write(lambda c: receipts.apply_receipts(
        c, [ReceiptIn("smsc1", f"77{n}", "delivered", None, "r") for n in range(3)],
        now=at(4)))
    for i in ids:
        got = store.run(lambda c, i=i: outbound.get_message(c, i))
        assert got is not None
        assert [e["status"] for e in got["events"]] == ["queued", "sending", "submitted",
                                                        "delivered"]
