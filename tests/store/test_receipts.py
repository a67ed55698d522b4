from __future__ import annotations

import sqlalchemy as sa

from store import Store, outbound, receipts
from store.models import pending_receipts
from tests.store.helpers import at, claim, mt


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
