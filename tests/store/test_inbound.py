from __future__ import annotations

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
