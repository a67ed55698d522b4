from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store import Store, outbound
from store.db import WRITE_OPTION
from store.models import outbound_messages
from tests.store.helpers import NOW, at, claim, mt


def test_claim_order_priority_then_schedule_then_arrival(store: Store) -> None:
    def setup(c: sa.Connection) -> dict[str, int]:
        return {
            "bulk_early": mt(c, priority=3, now=at(0)),
            "txn_late": mt(c, priority=2, now=at(3)),
            "txn_early": mt(c, priority=2, now=at(1)),
            # Scheduled for t=2: ranks by its schedule, between arrivals at t=1 and t=3.
            "txn_sched": mt(c, priority=2, now=at(0), schedule_at=at(2)),
            "alert": mt(c, priority=0, now=at(4)),
            "reply": mt(c, priority=1, now=at(5)),
        }

    ids = store.run(setup)
    claimed = store.run(lambda c: claim(c, now=at(10), limit=4))
    assert claimed == [ids["alert"], ids["reply"], ids["txn_early"], ids["txn_sched"]]
    assert store.run(lambda c: claim(c, now=at(10))) == [ids["txn_late"], ids["bulk_early"]]
    assert store.run(lambda c: claim(c, now=at(10))) == []

    msg = store.run(lambda c: outbound.get_message(c, ids["alert"]))
    assert msg is not None
    assert (msg["status"], msg["claimed_by"], msg["connection"], msg["attempts"]) == (
        "sending",
        "gw1",
        "smsc1",
        1,
    )


def test_claim_returns_full_rows(store: Store) -> None:
    mid = store.run(lambda c: mt(c, source_addr="SHOP", registered_delivery=False))
    rows = store.run(
        lambda c: outbound.claim_batch(c, instance="gw1", connection="smsc1", now=NOW, limit=10)
    )
    assert len(rows) == 1
    r = rows[0]
    assert (r.id, r.source_addr, r.text, r.registered_delivery, r.status) == (
        mid,
        "SHOP",
        "hi",
        False,
        "sending",
    )


def test_scheduled_not_claimed_early(store: Store) -> None:
    mid = store.run(lambda c: mt(c, schedule_at=at(60)))
    assert store.run(lambda c: claim(c, now=at(59))) == []
    assert store.run(lambda c: claim(c, now=at(60))) == [mid]


def test_expired_rows_are_expired_not_claimed(store: Store) -> None:
    stale = store.run(lambda c: mt(c, expires_at=at(30)))
    fresh = store.run(lambda c: mt(c, expires_at=at(300)))
    # Scheduled after its own expiry: can never be sent.
    never = store.run(lambda c: mt(c, schedule_at=at(400), expires_at=at(35)))
    assert store.run(lambda c: claim(c, now=at(31))) == [fresh]
    assert store.run(lambda c: claim(c, now=at(36))) == []
    for mid in (stale, never):
        m = store.run(lambda c, mid=mid: outbound.get_message(c, mid))
        assert m is not None and m["status"] == "expired"
        assert [e["status"] for e in m["events"]] == ["queued", "expired"]


def test_cancel(store: Store) -> None:
    queued = store.run(lambda c: mt(c))
    sent = store.run(lambda c: mt(c, priority=0))
    store.run(lambda c: claim(c, limit=1))
    store.run(
        lambda c: outbound.mark_part_submitted(
            c, message_id=sent, part_no=1, parts=1, smsc_message_id="x1", now=at(1)
        )
    )
    assert store.run(lambda c: outbound.cancel(c, queued, now=at(2))) == "cancelled"
    assert store.run(lambda c: outbound.cancel(c, queued, now=at(3))) == "too_late"
    assert store.run(lambda c: outbound.cancel(c, sent, now=at(2))) == "too_late"
    assert store.run(lambda c: outbound.cancel(c, 12345, now=at(2))) == "not_found"
    assert store.run(lambda c: claim(c, now=at(10))) == []
    m = store.run(lambda c: outbound.get_message(c, queued))
    assert m is not None and m["status"] == "cancelled"


def test_release_claims_and_requeue(store: Store) -> None:
    a, b, c_ = (store.run(lambda c: mt(c)) for _ in range(3))
    assert store.run(lambda c: claim(c, limit=2, instance="gw1")) == [a, b]
    assert store.run(lambda c: claim(c, limit=1, instance="gw2")) == [c_]
    # gw1 restarts: its in-flight rows go back, flagged; gw2's claim is untouched.
    assert store.run(lambda c: outbound.release_claims(c, instance="gw1", now=at(5))) == 2
    for mid in (a, b):
        m = store.run(lambda c, mid=mid: outbound.get_message(c, mid))
        assert m is not None
        assert (m["status"], m["claimed_by"], m["possibly_duplicate"]) == ("queued", None, True)
    m = store.run(lambda c: outbound.get_message(c, c_))
    assert m is not None and (m["status"], m["claimed_by"]) == ("sending", "gw2")

    # Plain requeue (e.g. throttled) does not flag, and does not clear an earlier flag.
    assert store.run(lambda c: claim(c, now=at(6))) == [a, b]
    assert store.run(lambda c: outbound.requeue(c, [a, b, c_], now=at(7))) == 3
    m = store.run(lambda c: outbound.get_message(c, a))
    assert m is not None and (m["status"], m["possibly_duplicate"], m["attempts"]) == (
        "queued",
        True,
        2,
    )
    m = store.run(lambda c: outbound.get_message(c, c_))
    assert m is not None and m["possibly_duplicate"] is False
    assert store.run(outbound.queue_depth) == {0: 0, 1: 0, 2: 3, 3: 0}


def test_get_message_history_in_order(store: Store) -> None:
    mid = store.run(lambda c: mt(c, now=at(0)))
    store.run(lambda c: claim(c, now=at(1)))
    store.run(lambda c: outbound.requeue(c, [mid], now=at(2), possibly_duplicate=True))
    store.run(lambda c: claim(c, now=at(3)))
    store.run(
        lambda c: outbound.mark_part_submitted(
            c, message_id=mid, part_no=1, parts=1, smsc_message_id="00AB", now=at(4)
        )
    )
    m = store.run(lambda c: outbound.get_message(c, mid))
    assert m is not None
    assert [(e["status"], e["at"]) for e in m["events"]] == [
        ("queued", at(0)),
        ("sending", at(1)),
        ("queued", at(2)),
        ("sending", at(3)),
        ("submitted", at(4)),
    ]
    assert m["events"][-1]["detail"] == "ab"
    assert [(p["part_no"], p["smsc_message_id"], p["status"]) for p in m["parts_detail"]] == [
        (1, "ab", "submitted")
    ]
    assert store.run(lambda c: outbound.get_message(c, 999)) is None


def test_mark_failed_and_rejected(store: Store) -> None:
    a = store.run(lambda c: mt(c))
    b = store.run(lambda c: mt(c))
    store.run(lambda c: claim(c))
    store.run(
        lambda c: outbound.mark_failed(
            c, a, error_code=0x0B, error_text="ESME_RINVDSTADR", now=at(1)
        )
    )
    store.run(
        lambda c: outbound.mark_failed(
            c, b, error_code=0x45, error_text="ESME_RSUBMITFAIL", now=at(1), status="rejected"
        )
    )
    ma = store.run(lambda c: outbound.get_message(c, a))
    mb = store.run(lambda c: outbound.get_message(c, b))
    assert ma is not None and mb is not None
    assert (ma["status"], ma["error_code"], ma["error_text"]) == ("failed", 11, "ESME_RINVDSTADR")
    assert mb["status"] == "rejected"
    with pytest.raises(ValueError):
        store.run(
            lambda c: outbound.mark_failed(
                c, a, error_code=1, error_text=None, now=NOW, status="delivered"
            )
        )


def test_enqueue_rejects_bad_input(store: Store) -> None:
    with pytest.raises(ValueError):
        store.run(lambda c: mt(c, priority=4))
    with pytest.raises(sa.exc.StatementError, match="naive"):
        store.run(lambda c: mt(c, schedule_at=NOW.replace(tzinfo=None)))


@pytest.mark.parametrize("compiled", [False, True], ids=["core", "compiled"])
def test_concurrent_claimers_never_share_a_row(store: Store, compiled: bool) -> None:
    """Two instances, each with its own connection, claiming in a loop until empty."""
    total = 300
    store.run(lambda c: [mt(c, priority=i % 4, now=at(i)) for i in range(total)])
    claimed: dict[str, list[int]] = {"gw1": [], "gw2": []}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            with store.engine.connect() as conn:
                conn = conn.execution_options(**{WRITE_OPTION: True})
                while True:
                    with conn.begin():
                        got = claim(conn, now=at(total + 1), limit=7, instance=name,
                                    compiled=compiled)
                    if not got:
                        return
                    claimed[name].extend(got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    both = claimed["gw1"] + claimed["gw2"]
    assert len(both) == total and len(set(both)) == total


@pytest.mark.postgres
@pytest.mark.parametrize("compiled", [False, True], ids=["core", "compiled"])
async def test_postgres_skip_locked_overlapping_transactions(pg_url: str,
                                                             compiled: bool) -> None:
    """Both claim transactions are open at the same time; the second skips locked rows.

    PostgreSQL only: SQLite serialises writers, overlapping write transactions cannot exist.
    """
    store = Store.open(pg_url)
    try:
        _overlapping_claims(store, compiled)
    finally:
        await store.close()


def _overlapping_claims(store: Store, compiled: bool = False) -> None:
    store.run(lambda c: [mt(c, now=at(i)) for i in range(20)])
    barrier = threading.Barrier(2, timeout=10)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def worker(name: str, delay: float) -> None:
        try:
            with store.engine.connect() as conn, conn.begin():
                if delay:
                    barrier.wait()  # the other one holds its locks now
                claimed[name] = claim(conn, now=at(100), limit=5, instance=name,
                                      compiled=compiled)
                if not delay:
                    barrier.wait()
                barrier.wait()  # commit only after both have claimed
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=("gw1", 0)),
        threading.Thread(target=worker, args=("gw2", 1)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(claimed["gw1"]) == len(claimed["gw2"]) == 5
    assert not set(claimed["gw1"]) & set(claimed["gw2"])
    # gw1 took the five oldest; gw2 skipped them instead of waiting.
    assert sorted(claimed["gw1"]) == claimed["gw1"]
    assert min(claimed["gw2"]) > max(claimed["gw1"])


def test_timestamps_are_aware_utc(store: Store) -> None:
    from datetime import timezone

    tz = timezone(timedelta(hours=8))
    mid = store.run(lambda c: mt(c, now=NOW.astimezone(tz), schedule_at=at(1).astimezone(tz)))
    m = store.run(lambda c: outbound.get_message(c, mid))
    assert m is not None
    assert m["created_at"] == NOW and m["created_at"].utcoffset() == timedelta(0)
    assert m["schedule_at"] == at(1)


def test_compiled_claim_takes_the_same_rows_in_the_same_order(store: Store) -> None:
    """The dispatcher's one-statement claim and the Core one agree: priority, due time, id;
    scheduled-later and expired rows left alone."""
    def fill(c: Connection) -> None:
        for i in range(30):
            mt(c, priority=(i * 7) % 4, now=at(i))
        mt(c, now=at(0), schedule_at=at(10_000))  # not due
        mt(c, now=at(0), expires_at=at(1))  # expired

    store.run(fill)
    core = store.run(lambda c: claim(c, now=at(100), limit=12))
    store.run(lambda c: c.execute(sa.update(outbound_messages).values(status="queued")))
    compiled = store.run(lambda c: claim(c, now=at(100), limit=12, compiled=True))
    assert compiled == core and len(core) == 12


def test_while_receipts_back_up_only_replies_are_claimed(store: Store) -> None:
    """The dispatcher's filter when the SMSC holds our receipts: bulk waits, replies go."""
    store.run(lambda c: [mt(c, priority=p, now=at(i)) for i, p in enumerate((3, 1, 2, 1, 0))])
    got = store.run(lambda c: outbound.claim_batch(
        c, instance="gw1", connection="smsc1", now=at(10), limit=10,
        where=outbound.urgent_only(sa.true()), where_key="urgent"))
    assert sorted(r.priority for r in got) == [0, 1, 1]
