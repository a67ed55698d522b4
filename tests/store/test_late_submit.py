"""store.outbound.record_late_submit and earlier-copy parts (part_no -N), on SQLite and
PostgreSQL: a late submit_sm_resp restores the true state and every receipt matches."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from store import Store, outbound, receipts
from store.models import pending_receipts
from tests.store.helpers import at, claim, mt


def _receipt(store: Store, sid: str, state: str = "delivered") -> int | None:
    return store.run(lambda c: receipts.apply_receipt(
        c, connection="smsc1", smsc_message_id=sid, state=state, error_code=None,
        raw=f"id:{sid} stat:{state}", now=at(50)))


def _late(store: Store, mid: int, sid: str, part_no: int = 1, parts: int = 1) -> str | None:
    return store.run(lambda c: outbound.record_late_submit(
        c, message_id=mid, part_no=part_no, parts=parts, smsc_message_id=sid, now=at(60)))


def _msg(store: Store, mid: int) -> dict[str, Any]:
    found = store.run(lambda c: outbound.get_message(c, mid))
    assert found is not None
    return found


def _failed_for_no_response(store: Store) -> int:
    mid = store.run(lambda c: mt(c))
    assert store.run(lambda c: claim(c)) == [mid]
    store.run(lambda c: outbound.flag_possible_duplicate(c, mid, now=at(2)))
    store.run(lambda c: outbound.mark_failed(c, mid, error_code=outbound.NO_SUBMIT_RESPONSE,
                                             error_text="no submit_sm_resp", now=at(3)))
    return mid


def test_late_response_revives_a_message_failed_for_want_of_one(store: Store) -> None:
    mid = _failed_for_no_response(store)
    assert _receipt(store, "a1") is None  # overtook the late response: parked
    assert _late(store, mid, "A1") == "delivered"
    found = _msg(store, mid)
    assert (found["status"], found["error_code"], found["possibly_duplicate"]) == (
        "delivered", None, True)
    assert store.run(lambda c: c.execute(sa.select(pending_receipts)).all()) == []
    # The retry's answer comes late too: kept as the earlier copy, its receipt matches.
    assert _late(store, mid, "b2") == "delivered"
    assert _receipt(store, "b2") == mid
    parts = {p["part_no"]: p["smsc_message_id"] for p in _msg(store, mid)["parts_detail"]}
    assert parts == {1: "a1", -1: "b2"}


def test_multipart_stays_failed_until_every_part_is_answered(store: Store) -> None:
    mid = _failed_for_no_response(store)
    assert _late(store, mid, "p1", 1, 2) == "failed"
    assert _msg(store, mid)["error_code"] == outbound.NO_SUBMIT_RESPONSE
    assert _late(store, mid, "p2", 2, 2) == "submitted"
    assert _msg(store, mid)["parts"] == 2


def test_other_failures_are_not_revived(store: Store) -> None:
    mid = store.run(lambda c: mt(c))
    store.run(lambda c: claim(c))
    store.run(lambda c: outbound.mark_failed(c, mid, error_code=0x45, error_text="refused",
                                             now=at(3)))
    assert _late(store, mid, "x9") == "failed"
    assert _receipt(store, "x9") == mid  # the id is known: its receipt still matches


def test_delivered_copy_counts_for_the_part(store: Store) -> None:
    # Resubmitted part: the earlier id moves to the copy row; its DELIVRD is enough.
    mid = store.run(lambda c: mt(c))
    store.run(lambda c: claim(c))
    for sid in ("first", "second"):
        store.run(lambda c, sid=sid: outbound.mark_part_submitted(
            c, message_id=mid, part_no=1, parts=1, smsc_message_id=sid, now=at(5)))
    assert _receipt(store, "second", "failed") == mid
    assert _msg(store, mid)["status"] == "failed"  # the primary decides while no copy...
    mid2 = store.run(lambda c: mt(c))
    store.run(lambda c: claim(c))
    for sid in ("c1", "c2"):
        store.run(lambda c, sid=sid: outbound.mark_part_submitted(
            c, message_id=mid2, part_no=1, parts=1, smsc_message_id=sid, now=at(5)))
    assert _receipt(store, "c1") == mid2  # ... a delivered copy means the handset has it
    assert _msg(store, mid2)["status"] == "delivered"
