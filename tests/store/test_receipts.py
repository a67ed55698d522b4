from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from store import Store, outbound, receipts
from store.db import WRITE_OPTION
from store.models import message_events, outbound_parts, pending_receipts
from tests.store.helpers import at, claim, mt

T = TypeVar("T")


def _sent(store: Store, smsc_ids: list[str]) -> int:
    """A message claimed and submitted in len(smsc_ids) parts."""
    mid = store.run(lambda c: mt(c))
    assert store.run(lambda c: claim(c)) == [mid]
    for n, sid in enumerate(smsc_ids, 1):
        store.run(
            lambda c, n=n, sid=sid: outbound.mark_part_submitted(
                c, message_id=mid, part_no=n, parts=len(smsc_ids), smsc_message_id=sid, now=at(n)
            )
        )
    return mid


def _receipt(
    store: Store,
    sid: str,
    state: str = "delivered",
    err: int | None = None,
    connection: str = "smsc1",
) -> int | None:
    return store.run(
        lambda c: receipts.apply_receipt(
            c,
            connection=connection,
            smsc_message_id=sid,
            state=state,
            error_code=err,
            raw=f"id:{sid} stat:{state}",
            now=at(50),
        )
    )


def _status(store: Store, mid: int) -> str:
    m = store.run(lambda c: outbound.get_message(c, mid))
    assert m is not None
    return str(m["status"])


def _pending(store: Store) -> list[str]:
    return store.run(
        lambda c: list(
            c.execute(
                sa.select(pending_receipts.c.smsc_message_id).order_by(pending_receipts.c.id)
            ).scalars()
        )
    )


def test_receipt_matches_hex_resp_with_decimal_receipt(store: Store) -> None:
    mid = _sent(store, ["0x1F4".removeprefix("0x")])  # submit_sm_resp said 1F4 (hex)
    assert _status(store, mid) == "submitted"
    assert _receipt(store, "500") == mid  # receipt quotes it in decimal
    assert _status(store, mid) == "delivered"


def test_receipt_matches_decimal_resp_with_hex_receipt(store: Store) -> None:
    mid = _sent(store, ["0000123456789"])
    assert _receipt(store, format(123456789, "X")) == mid
    assert _status(store, mid) == "delivered"


def test_receipt_before_submit_resp_is_kept_then_applied(store: Store) -> None:
    mid = store.run(lambda c: mt(c))
    store.run(lambda c: claim(c))
    assert _receipt(store, "ff", "delivered") is None
    assert _pending(store) == ["ff"]
    assert _status(store, mid) == "sending"
    store.run(
        lambda c: outbound.mark_part_submitted(
            c, message_id=mid, part_no=1, parts=1, smsc_message_id="255", now=at(60)
        )
    )
    assert _pending(store) == []
    m = store.run(lambda c: outbound.get_message(c, mid))
    assert m is not None
    assert m["status"] == "delivered"
    assert [e["status"] for e in m["events"]] == ["queued", "sending", "submitted", "delivered"]
    assert m["parts_detail"][0]["status"] == "delivered"


def test_unknown_receipt_is_kept(store: Store) -> None:
    _sent(store, ["abc"])
    assert _receipt(store, "  00DEAD  ", "failed", err=1) is None
    rows = store.run(lambda c: c.execute(sa.select(pending_receipts)).all())
    assert [(r.connection, r.smsc_message_id, r.state, r.error_code) for r in rows] == [
        ("smsc1", "dead", "failed", 1)
    ]


def test_multipart_aggregation(store: Store) -> None:
    mid = _sent(store, ["p1", "p2", "p3"])
    assert _status(store, mid) == "submitted"
    assert _receipt(store, "p1") == mid
    assert _receipt(store, "p3") == mid
    assert _status(store, mid) == "submitted"  # part 2 still out
    assert _receipt(store, "p2") == mid
    assert _status(store, mid) == "delivered"
    m = store.run(lambda c: outbound.get_message(c, mid))
    assert m is not None and m["parts"] == 3
    assert [p["status"] for p in m["parts_detail"]] == ["delivered"] * 3


def test_multipart_not_submitted_until_all_parts(store: Store) -> None:
    mid = store.run(lambda c: mt(c))
    store.run(lambda c: claim(c))
    store.run(
        lambda c: outbound.mark_part_submitted(
            c, message_id=mid, part_no=1, parts=2, smsc_message_id="q1", now=at(1)
        )
    )
    assert _status(store, mid) == "sending"
    # A delivered first part does not make the message delivered.
    assert _receipt(store, "q1") == mid
    assert _status(store, mid) == "sending"
    store.run(
        lambda c: outbound.mark_part_submitted(
            c, message_id=mid, part_no=2, parts=2, smsc_message_id="q2", now=at(2)
        )
    )
    assert _status(store, mid) == "submitted"
    assert _receipt(store, "q2") == mid
    assert _status(store, mid) == "delivered"


def test_one_failed_part_fails_the_message(store: Store) -> None:
    mid = _sent(store, ["r1", "r2"])
    assert _receipt(store, "r2", "expired", err=0x0D) == mid
    assert _status(store, mid) == "expired"
    # A later delivered part does not resurrect it.
    assert _receipt(store, "r1", "delivered") == mid
    m = store.run(lambda c: outbound.get_message(c, mid))
    assert m is not None
    assert (m["status"], m["error_code"]) == ("expired", 0x0D)
    assert [p["status"] for p in m["parts_detail"]] == ["delivered", "expired"]


def test_exact_id_preferred_over_other_base(store: Store) -> None:
    # "10" (exact) and "a" (hex reading of decimal 10) are both stored; exact wins.
    exact = _sent(store, ["10"])
    _other = _sent(store, ["a"])
    assert _receipt(store, "10") == exact


def test_receipt_state_mapping() -> None:
    assert receipts.RECEIPT_STATES["DELIVRD"] == "delivered"
    assert receipts.RECEIPT_STATES["UNDELIV"] == "failed"
    assert receipts.RECEIPT_STATES["EXPIRED"] == "expired"
    assert receipts.RECEIPT_STATES["REJECTD"] == "rejected"
    assert receipts.RECEIPT_STATES["UNKNOWN"] == "unknown"
    assert set(receipts.RECEIPT_STATES.values()) <= receipts.PART_FINAL_STATES


# ---------------------------------------------------------------------------------------------
# Several writers (issue 9): a receipt applied while its part's row is being written.
# ---------------------------------------------------------------------------------------------


def _in_thread(fn: Callable[[], T]) -> tuple[threading.Thread, list[T]]:
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


def test_receipt_during_part_write_is_matched_by_retry(store: Store) -> None:
    """Two real transactions: A records the part's SMSC id (and looks in pending_receipts,
    empty) and stays open; B applies the receipt meanwhile. On PostgreSQL (READ COMMITTED)
    B cannot see A's uncommitted id and parks the receipt, and A never sees B's pending row:
    both miss. On SQLite B waits for A's write lock and then matches directly. Either way
    the message must end delivered once `retry_pending` (the sweep) has run."""
    mid = store.run(lambda c: mt(c))
    assert store.run(lambda c: claim(c)) == [mid]
    with store.engine.connect() as a:
        a = a.execution_options(**{WRITE_OPTION: True})
        tx = a.begin()
        outbound.mark_part_submitted(a, message_id=mid, part_no=1, parts=1,
                                     smsc_message_id="7f", now=at(1))
        thread, result = _in_thread(lambda: _receipt(store, "127"))  # decimal for 0x7f
        thread.join(timeout=1.0)
        if store.dialect_name == "postgresql":
            assert not thread.is_alive() and result == [None]  # the race, reproduced
        tx.commit()
    thread.join(timeout=10)
    assert not thread.is_alive()
    if store.dialect_name == "postgresql":
        assert _pending(store) == ["127"] and _status(store, mid) == "submitted"
    retried = store.run(lambda c: receipts.retry_pending(c, now=at(60)))
    assert _pending(store) == []
    assert _status(store, mid) == "delivered"
    if store.dialect_name == "postgresql":
        assert retried.matched == [mid]
    # A second retry (another instance's sweep) finds nothing left to apply.
    assert store.run(lambda c: receipts.retry_pending(c, now=at(61))).matched == []


def _parked_with_part(store: Store, sid: str) -> int:
    """A submitted message and a parked receipt for it that was never matched (the state the
    race above leaves behind)."""
    mid = _sent(store, [sid])
    store.run(lambda c: c.execute(sa.update(outbound_parts).values(smsc_message_id=None)))
    assert _receipt(store, sid) is None
    store.run(lambda c: c.execute(sa.update(outbound_parts).values(smsc_message_id=sid)))
    return mid


def _receipt_events(store: Store, mid: int) -> int:
    return store.run(lambda c: c.execute(
        sa.select(sa.func.count()).select_from(message_events).where(
            message_events.c.message_id == mid, message_events.c.detail.like("receipt%"))
    ).scalar_one())


def test_retry_claims_each_parked_receipt_once_across_transactions(store: Store) -> None:
    """Two instances' sweeps retry the same parked receipt at once: exactly one applies it
    (the second waits for the first's DELETE and then finds nothing)."""
    mid = _parked_with_part(store, "abc")
    with store.engine.connect() as a:
        a = a.execution_options(**{WRITE_OPTION: True})
        tx = a.begin()
        assert receipts.retry_pending(a, now=at(60)).matched == [mid]
        thread, result = _in_thread(
            lambda: store.run(lambda c: receipts.retry_pending(c, now=at(61))))
        thread.join(timeout=0.5)
        assert thread.is_alive()  # B waits for A's lock (row lock on PG, write lock on SQLite)
        tx.commit()
    thread.join(timeout=10)
    assert not thread.is_alive() and result[0].matched == []
    assert _status(store, mid) == "delivered"
    assert _receipt_events(store, mid) == 1
    assert _pending(store) == []


def test_retry_skips_ids_never_sent_and_pages(store: Store) -> None:
    for n in range(7):
        assert _receipt(store, f"unknown{n}") is None
    mid = _parked_with_part(store, "5")
    first = store.run(lambda c: receipts.retry_pending(c, now=at(60), limit=3))
    assert first.matched == [] and first.scanned == 3
    rest = store.run(lambda c: receipts.retry_pending(c, now=at(60), after_id=first.last_id))
    assert rest.matched == [mid]
    assert _status(store, mid) == "delivered"
    assert len(_pending(store)) == 7
    count, oldest = store.run(lambda c: receipts.unmatched_before(c, at(51), limit=2))
    assert count == 7 and [r.smsc_message_id for r in oldest] == ["unknown0", "unknown1"]
    assert store.run(lambda c: receipts.unmatched_before(c, at(50)))[0] == 0


def test_malformed_receipt_fields_are_stored_not_refused(store: Store) -> None:
    """What an SMSC may put in a receipt must never fail the transaction (the SMSC would get
    an error and redeliver forever): NUL, lone surrogates, an over-long id, a huge error."""
    long_id = "9" * 300
    for sid, err, raw in [("a\x00b", None, "id:a\x00b stat:DELIVRD"),
                          ("x\ud800", 2**40, "id:x\ud800 err:\ud800"),
                          (long_id, -1, f"id:{long_id}")]:
        assert store.run(lambda c, s=sid, e=err, r=raw: receipts.apply_receipt(
            c, connection="smsc1", smsc_message_id=s, state="delivered", error_code=e,
            raw=r, now=at(50))) is None
    rows = store.run(lambda c: c.execute(sa.select(pending_receipts)).all())
    assert len(rows) == 3
    assert all(r.error_code is None for r in rows)
    assert len(rows[2].smsc_message_id) == receipts.SMSC_ID_MAX
