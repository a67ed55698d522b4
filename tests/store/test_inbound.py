from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store import Store, inbound
from store.models import inbound_messages, message_events
from tests.store.helpers import NOW, at, mo, mt


def test_insert_mo_dedup_keeps_transaction_alive(store: Store) -> None:
    def op(conn: Connection) -> tuple[tuple[int, bool], tuple[int, bool], int]:
        kw = {
            "connection": "smsc1",
            "dedup_key": "abc",
            "source_addr": "1",
            "dest_addr": "2",
            "text": "BAL",
            "data_coding": 0,
            "esm_class": 0,
            "short_message": b"BAL",
            "now": NOW,
        }
        first = inbound.insert_mo(conn, **kw)
        second = inbound.insert_mo(conn, **kw)
        # Work after the duplicate still commits (no aborted transaction on PostgreSQL).
        reply = mt(conn, in_reply_to=first[0], priority=1)
        return first, second, reply

    first, second, reply = store.run(op)
    assert first[1] is True and second == (first[0], False)

    # A redelivery in a later transaction, and the same key on another connection.
    again = store.run(
        lambda c: inbound.insert_mo(
            c,
            connection="smsc1",
            dedup_key="abc",
            source_addr="1",
            dest_addr="2",
            text="BAL",
            data_coding=0,
            esm_class=0,
            short_message=b"BAL",
            now=at(5),
        )
    )
    assert again == (first[0], False)
    other = store.run(lambda c: mo(c, "abc", connection="smsc2"))
    assert other != first[0]

    n = store.run(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(inbound_messages)).scalar_one()
    )
    assert n == 2
    assert reply > 0


async def test_insert_mo_dedup_through_writer(store: Store) -> None:
    results = [
        await store.write(
            lambda c: inbound.insert_mo(
                c,
                connection="smsc1",
                dedup_key="same",
                source_addr="1",
                dest_addr="2",
                text="t",
                data_coding=8,
                esm_class=0,
                short_message="t".encode("utf-16-be"),
                now=NOW,
            )
        )
        for _ in range(3)
    ]
    assert [r[1] for r in results] == [True, False, False]
    assert len({r[0] for r in results}) == 1


def test_mo_lifecycle(store: Store) -> None:
    a = store.run(lambda c: mo(c, "a", text="订单 1", now=at(0)))
    b = store.run(lambda c: mo(c, "b", now=at(1)))
    c_ = store.run(lambda c: mo(c, "c", now=at(2)))
    assert [r.id for r in store.run(lambda c: inbound.unprocessed_mos(c, 10))] == [a, b, c_]
    store.run(lambda c: inbound.mark_mo_processed(c, a, command="ORDER", now=at(3)))
    store.run(lambda c: inbound.mark_mo_failed(c, b, error="parse error", now=at(4)))
    assert [r.id for r in store.run(lambda c: inbound.unprocessed_mos(c, 10))] == [c_]
    row = store.run(lambda c: inbound.get_mo(c, a))
    assert row is not None
    assert (row.status, row.command, row.text, row.processed_at) == (
        "processed",
        "ORDER",
        "订单 1",
        at(3),
    )
    assert row.received_at == at(0) and row.received_at.tzinfo is not None
    failed = store.run(lambda c: inbound.get_mo(c, b))
    assert failed is not None and (failed.status, failed.error) == ("failed", "parse error")
    assert store.run(lambda c: inbound.get_mo(c, 999)) is None
    history = store.run(
        lambda c: (
            c.execute(
                sa.select(message_events.c.status)
                .where(message_events.c.direction == "in", message_events.c.message_id == a)
                .order_by(message_events.c.id)
            )
            .scalars()
            .all()
        )
    )
    assert history == ["received", "processed"]


# -- redelivery identity (issue 8): the ack rule, the horizon, SMSC ids, claims ---------------

HORIZON = timedelta(hours=48)


def _store_mo(conn: Connection, *, now: datetime = NOW, key: str = "digest-1",
              smsc_id: str | None = None, connection: str = "smsc1") -> inbound.StoredIdentity:
    return inbound.store_mo(
        conn, connection=connection, content_key=key, smsc_message_id=smsc_id,
        horizon=HORIZON, now=now, source_addr="8613800000001", dest_addr="10690",
        text="ORD 123456 1001*1", data_coding=0, esm_class=0, short_message=b"ORD")


def test_identical_mo_is_a_redelivery_until_the_ack_is_confirmed(store: Store) -> None:
    first = store.run(lambda c: _store_mo(c))
    assert first.duplicate_of is None
    # Ack not confirmed (session dropped, crash, or simply not yet known): a redelivery,
    # also 47 hours later; a redelivery of a redelivery points at the original.
    again = store.run(lambda c: _store_mo(c, now=NOW + timedelta(hours=47)))
    assert again.duplicate_of == first.id
    third = store.run(lambda c: _store_mo(c, now=NOW + timedelta(hours=47)))
    assert third.duplicate_of == first.id
    # Confirmed: the SMSC had our ack, so the same text is the person's new message.
    store.run(lambda c: inbound.confirm_acks(c, [first.id, again.id, third.id]))
    new = store.run(lambda c: _store_mo(c, now=NOW + timedelta(hours=47, seconds=1)))
    assert new.duplicate_of is None and new.id != first.id
    # Past the horizon an unconfirmed predecessor is forgotten.
    late = store.run(lambda c: _store_mo(c, now=NOW + timedelta(hours=47 + 49)))
    assert late.duplicate_of is None


def test_smsc_message_id_decides_exactly(store: Store) -> None:
    a = store.run(lambda c: _store_mo(c, smsc_id="A1"))
    b = store.run(lambda c: _store_mo(c, smsc_id="B2"))  # same text, another id: new
    again = store.run(lambda c: _store_mo(c, smsc_id="A1", now=NOW + timedelta(days=1)))
    assert a.duplicate_of is None and b.duplicate_of is None
    assert again.duplicate_of == a.id


def test_two_workers_claiming_the_same_new_message_agree(store: Store) -> None:
    """Both see a confirmed predecessor and both try to claim the new message: the unique
    claim key makes the second a redelivery of the first (one effect)."""
    first = store.run(lambda c: _store_mo(c))
    store.run(lambda c: inbound.confirm_acks(c, [first.id]))

    def both(conn: Connection) -> tuple[inbound.StoredIdentity, inbound.StoredIdentity]:
        one = _store_mo(conn, now=at(60))
        # The second worker decided before the first one's row existed: replay its claim.
        row = inbound.get_mo(conn, one.id)
        assert row is not None and row.dedup_key == f"new:digest-1:{first.id}"
        conn.execute(sa.update(inbound_messages).where(inbound_messages.c.id == one.id)
                     .values(ack_confirmed=True))  # as if this one were confirmed already
        two = inbound.store_mo(
            conn, connection="smsc1", content_key="digest-1", smsc_message_id=None,
            horizon=HORIZON, now=at(61), source_addr="8613800000001", dest_addr="10690",
            text="x", data_coding=0, esm_class=0, short_message=b"x")
        return one, two

    one, two = store.run(both)
    assert one.duplicate_of is None and two.duplicate_of is None  # confirmed: both new
    assert store.run(lambda c: inbound.insert_mo(
        c, connection="smsc1", dedup_key=f"new:digest-1:{first.id}", source_addr="1",
        dest_addr="2", text="x", data_coding=0, esm_class=0, short_message=b"x",
        now=at(62))) == (one.id, False)


def test_receipt_without_id_is_stored_final(store: Store) -> None:
    mo_id = store.run(lambda c: inbound.store_receipt_without_id(
        c, connection="smsc1", now=NOW, source_addr="8613800000001", dest_addr="10690",
        text="stat:DELIVRD", data_coding=0, esm_class=4, short_message=b"stat:DELIVRD"))
    row = store.run(lambda c: inbound.get_mo(c, mo_id))
    assert row is not None
    assert (row.status, row.disposition) == ("processed", "receipt_without_id")
    assert store.run(lambda c: inbound.unprocessed_mos(c, 10)) == []


@pytest.mark.postgres
async def test_a_concurrent_claim_waits_and_then_loses(pg_url: str) -> None:
    """Two workers claim one MO at once (PostgreSQL, two connections: SQLite has one writer
    at a time): the second waits on the first's row lock and, once the first has processed
    the MO and committed, finds it taken."""
    store = Store.open(pg_url)
    try:
        mo_id = store.run(lambda c: mo(c, "race"))
        first = store.engine.connect()
        tx = first.begin()
        assert inbound.claim_mos(first, [mo_id]) is True
        second: list[bool] = []
        started = threading.Event()

        def claim_again() -> None:
            with store.engine.connect() as c, c.begin():
                started.set()
                second.append(inbound.claim_mos(c, [mo_id]))

        t = threading.Thread(target=claim_again)
        t.start()
        started.wait(5)
        t.join(0.5)
        assert t.is_alive() and not second  # blocked on the first claim's row lock
        assert inbound.mark_mo_processed(first, mo_id, command="HELP", now=NOW,
                                         disposition="answered") is True
        tx.commit()
        first.close()
        t.join(10)
        assert second == [False]
    finally:
        await store.close()


def test_claim_and_mark_happen_once(store: Store) -> None:
    mo_id = store.run(lambda c: mo(c, "claim"))
    assert store.run(lambda c: inbound.claim_mos(c, [mo_id])) is True
    assert store.run(lambda c: inbound.mark_mo_processed(
        c, mo_id, command="HELP", now=NOW, disposition="answered")) is True
    assert store.run(lambda c: inbound.claim_mos(c, [mo_id])) is False
    assert store.run(lambda c: inbound.mark_mo_processed(
        c, mo_id, command="HELP", now=NOW, disposition="answered")) is False


def test_a_long_mo_is_stale_only_when_its_newest_part_is_old(store: Store) -> None:
    """The decision looks at every waiting part of a group, however many other parts wait:
    a message whose last part came recently is not given up on."""
    def part(conn: Connection, phone: str, ref: int, seq: int, at: datetime) -> None:
        inbound.insert_mo(conn, connection="smsc1", dedup_key=f"{phone}-{ref}-{seq}",
                          source_addr=phone, dest_addr="10690", text=f"p{seq}",
                          data_coding=0, esm_class=0x40, short_message=b"", now=at,
                          concat=(ref, 3, seq))

    def fill(conn: Connection) -> None:
        part(conn, "8613800000001", 1, 1, NOW)  # all parts old: stale
        part(conn, "8613800000001", 1, 2, NOW)
        part(conn, "8613800000002", 2, 1, NOW)  # an old part, then a recent one
        part(conn, "8613800000002", 2, 2, NOW + timedelta(seconds=200))

    store.run(fill)
    cut = NOW + timedelta(seconds=120)
    for limit in (1, 500):  # a small page must not cut a group's newest part off
        groups = store.run(lambda c, n=limit: inbound.stale_concat_groups(
            c, older_than=cut, limit=n))
        assert [(g.source_addr, [p.concat_seq for p in g.parts]) for g in groups] == [
            ("8613800000001", [1, 2])]
