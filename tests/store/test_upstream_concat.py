"""store.upstream_concat on SQLite and PostgreSQL: parts of an upstream application's
concatenated submit, joined once into one MT; receipts per part; expiry."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from gateway.smpp.text import decode_text, join_parts
from store import Store, outbound, upstream, upstream_concat
from store.models_upstream import upstream_outbox

from .helpers import NOW, at


def _part(store: Store, seq: int, payload: bytes, *, ref: int = 7, total: int = 3,
          when: float = 0, dc: int = 0, receipt: bool = True) -> upstream_concat.PartAccepted:
    return store.run(lambda c: upstream_concat.add_part(
        c, system_id="crm", source_addr="10690", dest_addr="8613800000055", ref=ref,
        total=total, seq=seq, data_coding=dc, payload=payload, text=decode_text(payload, dc),
        registered_delivery=receipt, priority=2, schedule_at=None, expires_at=None,
        now=at(when), join_text=join_parts))


def _owed(store: Store) -> list[dict[str, Any]]:
    rows = store.run(lambda c: c.execute(sa.select(upstream_outbox.c.receipt_for,
                                                   upstream_outbox.c.payload)
                                         .order_by(upstream_outbox.c.id)).all())
    return [{"for": r.receipt_for, **json.loads(r.payload)} for r in rows]


def test_parts_in_any_order_join_once_with_a_receipt_per_part(store: Store) -> None:
    third = _part(store, 3, b"C")
    first = _part(store, 1, b"A")
    again = _part(store, 1, b"A")  # a repeat while the group is open
    assert (again.message_id, again.repeated, again.mt_id) == (first.message_id, True, None)
    second = _part(store, 2, b"B", receipt=False)
    assert second.mt_id is not None and first.mt_id is None and third.mt_id is None
    assert len({first.message_id, second.message_id, third.message_id}) == 3
    msg = store.run(lambda c: outbound.get_message(c, second.mt_id))
    assert (msg["text"], msg["upstream"], msg["dest_addr"]) == ("ABC", "crm", "8613800000055")
    store.run(lambda c: outbound.mark_failed(c, second.mt_id, error_code=1, error_text="x",
                                             now=at(5)))
    owed = _owed(store)
    # Part 2 asked for no receipt; parts 1 and 3 each get one with their own id.
    assert [(o["for"], o["message_id"], o["status"]) for o in owed] == [
        (first.message_id, first.message_id, "failed"),
        (third.message_id, third.message_id, "failed")]
    assert [o["text"] for o in owed] == ["A", "C"]
    # Owing again (another part's receipt) adds nothing.
    assert store.run(lambda c: upstream.owe_receipt(c, second.mt_id, now=at(6))) is None


def test_a_finished_group_frees_its_reference(store: Store) -> None:
    ids = [_part(store, s, b"x", total=2).message_id for s in (1, 2)]
    again = [_part(store, s, b"x", total=2, when=1) for s in (1, 2)]
    assert again[1].mt_id is not None and not any(p.repeated for p in again)
    assert set(ids).isdisjoint(p.message_id for p in again)


def test_ucs2_surrogate_pair_split_across_parts_is_joined_whole(store: Store) -> None:
    data = "ok😀".encode("utf-16-be")
    _part(store, 1, data[:5], total=2, dc=8)
    done = _part(store, 2, data[5:], total=2, dc=8)
    assert store.run(lambda c: outbound.get_message(c, done.mt_id))["text"] == "ok😀"


def test_incomplete_group_expires_with_failure_receipts(store: Store) -> None:
    a = _part(store, 1, b"A", when=0)
    b = _part(store, 3, b"C", when=1)
    assert store.run(lambda c: upstream_concat.expire(c, older_than=NOW, now=at(2))) == []
    assert store.run(lambda c: upstream_concat.has_expired(c, older_than=at(1)))
    [gone] = store.run(lambda c: upstream_concat.expire(c, older_than=at(1), now=at(2)))
    assert (gone.received, gone.total, gone.receipts_owed) == ([1, 3], 3, 2)
    owed = _owed(store)
    assert [(o["for"], o["status"]) for o in owed] == [(a.message_id, "failed"),
                                                       (b.message_id, "failed")]
    assert "1 of 3 parts never arrived" in owed[0]["error_text"]
    # Expiry is once; the late part opens a new group instead of reviving the old one.
    assert store.run(lambda c: upstream_concat.expire(c, older_than=at(9), now=at(9))) == []
    late = _part(store, 2, b"B", when=3)
    assert late.mt_id is None and late.group_id != a.group_id
    assert store.run(lambda c: upstream_concat.group_state(c, a.group_id)) == ("expired", None)
