"""Store side of routing: bulk enqueue and the routing-aware claim (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from store import Store, outbound

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


async def test_enqueue_many_returns_ids_in_order(store: Store) -> None:
    items = [{"dest_addr": f"86138{i:08d}", "text": f"t{i}"} for i in range(250)]
    items[7]["priority"] = 1
    ids = await store.write(lambda c: outbound.enqueue_many(c, items, now=NOW,
                                                             source_addr="10690"))
    assert len(ids) == 250 and ids == sorted(ids)
    msg = await store.read(lambda c: outbound.get_message(c, ids[7]))
    assert (msg["dest_addr"], msg["priority"], msg["status"]) == ("8613800000007", 1, "queued")
    assert [e["status"] for e in msg["events"]] == ["queued"]
    assert await store.write(lambda c: outbound.enqueue_many(c, [], now=NOW)) == []


async def test_claim_with_prefix_filter_and_skip(store: Store) -> None:
    dests = ["8613800000001", "8613900000001", "15550000001", "8613800000002"]
    ids = await store.write(lambda c: outbound.enqueue_many(
        c, [{"dest_addr": d, "text": "x", "priority": 2} for d in dests], now=NOW))

    def claim(c, **kw):  # type: ignore[no-untyped-def]
        return [r.id for r in outbound.claim_batch(c, instance="i", connection="x", now=NOW,
                                                   limit=10, **kw)]

    # dear: serves all, but cheap (86138) is up and cheaper; unserved rows are claimable.
    dear = outbound.dest_prefix_filter(serve=None, exclude=["86138"])
    got = await store.write(lambda c: claim(c, where=dear, exclude_ids={ids[2]}))
    assert got == [ids[1]]
    cheap = outbound.dest_prefix_filter(serve=["86138"], unserved_except=["86138", "86139"])
    got = await store.write(lambda c: claim(c, where=cheap))
    assert got == [ids[0], ids[2], ids[3]]  # its prefix, plus the one nobody serves
    nothing = outbound.dest_prefix_filter(serve=None, exclude_all=True)
    await store.write(lambda c: outbound.requeue(c, ids, now=NOW))
    assert await store.write(lambda c: claim(c, where=nothing)) == []
