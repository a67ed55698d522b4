"""store/fastsql.py: a FastStatement gives what conn.execute gives, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from store import fastsql
from store.events import dialect_insert
from store.models import inbound_messages as mo
from store.store import Store

_SELECT = sa.select(mo.c.id, mo.c.received_at, mo.c.ack_confirmed, mo.c.short_message,
                    mo.c.duplicate_of).where(mo.c.source_addr == sa.bindparam("src")
                                             ).order_by(mo.c.id)
_FAST_SELECT = fastsql.FastStatement(_SELECT)
_FAST_INSERT = fastsql.FastStatement(lambda conn: dialect_insert(conn, mo).values(
    connection="c", dedup_key=sa.bindparam("key"), source_addr=sa.bindparam("src"),
    dest_addr="10086", text="t", data_coding=0, esm_class=0,
    short_message=sa.bindparam("raw"), received_at=sa.bindparam("at"), status="received",
).on_conflict_do_nothing(index_elements=["connection", "dedup_key"]).returning(mo.c.id))
_FAST_CONFIRM = fastsql.FastStatement(
    sa.update(mo).where(mo.c.source_addr == sa.bindparam("src")).values(ack_confirmed=True))
_FAST_PLAIN_INSERT = fastsql.FastStatement(mo.insert().values(
    connection="c", dest_addr="10086", text="t", data_coding=0, esm_class=0, status="received"),
    keys=("dedup_key", "source_addr", "short_message", "received_at"))


async def test_fast_statements_match_core(store: Store) -> None:
    at = datetime(2026, 12, 1, 3, 4, 5, 123456, tzinfo=UTC)

    def work(conn: sa.Connection) -> tuple[list, list, int, int | None, list]:
        first = _FAST_INSERT.scalar(conn, {"key": "k1", "src": "8613", "raw": b"\x00\x01",
                                           "at": at})
        again = _FAST_INSERT.scalar(conn, {"key": "k1", "src": "8613", "raw": b"x", "at": at})
        _FAST_PLAIN_INSERT.many(conn, [
            {"dedup_key": f"m{i}", "source_addr": "8613", "short_message": b"m",
             "received_at": at + timedelta(seconds=i)} for i in range(3)])
        fast = _FAST_SELECT.all(conn, {"src": "8613"})
        core = conn.execute(_SELECT, {"src": "8613"}).all()
        changed = _FAST_CONFIRM.run(conn, {"src": "8613"})
        after = _FAST_SELECT.all(conn, {"src": "8613"})
        assert first is not None
        return fast, core, changed, again, after

    fast, core, changed, again, after = await store.write(work)
    assert again is None  # ON CONFLICT DO NOTHING: no row returned
    assert [tuple(r) for r in fast] == [tuple(r) for r in core]
    assert len(fast) == 4 and changed == 4
    row = fast[0]
    assert row.received_at == at and row.received_at.tzinfo is not None
    assert row.ack_confirmed is False and row.short_message == b"\x00\x01"
    assert [r.ack_confirmed for r in after] == [True] * 4


async def test_errors_are_sqlalchemy_errors_and_leave_the_batch_usable(store: Store) -> None:
    at = datetime.now(UTC)
    plain = fastsql.FastStatement(mo.insert().values(
        connection="c", dedup_key="same", source_addr="1", dest_addr="2", text="t",
        data_coding=0, esm_class=0, status="received", short_message=b"",
        received_at=sa.bindparam("at")))
    await store.write(lambda c: plain.run(c, {"at": at}))
    with pytest.raises(sa.exc.IntegrityError):
        await store.write(lambda c: plain.run(c, {"at": at}))
    # The writer carries on with the next op on the same (not invalidated) connection.
    rows = await store.write(lambda c: _FAST_SELECT.all(c, {"src": "1"}))
    assert len(rows) == 1


async def test_in_lists_of_any_length(store: Store) -> None:
    at = datetime.now(UTC)
    ids = await store.write(lambda c: [_FAST_INSERT.scalar(c, {
        "key": f"k{i}", "src": "86139", "raw": b"", "at": at}) for i in range(4)])
    by_ids = fastsql.FastStatement(sa.select(mo.c.id).where(
        mo.c.id.in_(sa.bindparam("ids", expanding=True)),
        mo.c.source_addr == sa.bindparam("src")).order_by(mo.c.id))

    def lookups(c: sa.Connection) -> list[list[int]]:
        return [[r.id for r in by_ids.all(c, {"ids": wanted, "src": "86139"})]
                for wanted in ([], ids[:1], ids[1:], ids, ids[:1], [-1, *ids[2:]])]

    got = await store.write(lookups)
    assert got == [[], ids[:1], ids[1:], ids, ids[:1], ids[2:]]
    # Longer lists are padded up to a compiled length (a dozen forms, not one per size).
    many = list(range(-20, 0)) + ids
    rows = await store.write(lambda c: by_ids.all(c, {"ids": many, "src": "86139"}))
    assert [r.id for r in rows] == ids


async def test_observers_see_every_execution(store: Store) -> None:
    seen: list[tuple[str, bool]] = []
    fastsql.OBSERVERS.append(lambda sql, many: seen.append((sql, many)))
    try:
        await store.write(lambda c: _FAST_SELECT.all(c, {"src": "nobody"}))
    finally:
        fastsql.OBSERVERS.clear()
    # The writer's BEGIN (SQLite) runs on the cursor too, and is seen as well.
    selects = [sql for sql, _ in seen if sql.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and all(not many for _, many in seen)
    assert {sql.split()[0] for sql, _ in seen} <= {"SELECT", "BEGIN"}


async def test_an_unknown_parameter_is_an_error_not_a_null(store: Store) -> None:
    with pytest.raises(KeyError, match="unknown parameter"):
        await store.write(lambda c: _FAST_SELECT.all(c, {"src": "1", "typo": 2}))


async def test_a_missing_or_refused_value_is_an_error(store: Store) -> None:
    # A bind without a value is a bug in the caller, not a NULL; a value the column's type
    # refuses is reported as SQLAlchemy reports it (StatementError, the SQL attached).
    with pytest.raises(KeyError, match="src"):
        await store.write(lambda c: _FAST_SELECT.all(c, {}))
    with pytest.raises(sa.exc.StatementError, match=r"received_at|datetime"):
        await store.write(lambda c: _FAST_INSERT.scalar(c, {
            "key": "k", "src": "1", "raw": b"", "at": "not a datetime"}))
    # Defaults built into the statement still apply when the caller gives nothing.
    at = datetime.now(UTC)
    await store.write(lambda c: _FAST_PLAIN_INSERT.run(c, {
        "dedup_key": "d1", "source_addr": "86137", "short_message": b"x", "received_at": at}))
    row = await store.write(lambda c: c.execute(sa.select(mo.c.text, mo.c.status).where(
        mo.c.dedup_key == "d1")).one())
    assert tuple(row) == ("t", "received")


async def test_datetimes_bind_as_before_and_naive_ones_are_refused(store: Store) -> None:
    """UTCDateTime's fused SQLite binder stores exactly what the decorator + SQLite DATETIME
    chain stored (the text older rows hold, which the result side parses), converts other
    offsets to UTC, and still refuses naive datetimes, through Core and fast statements."""
    plus8 = timezone(timedelta(hours=8))
    cases = [datetime(2026, 12, 1, 3, 4, 5, 123456, tzinfo=UTC),
             datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC),  # microsecond 0 still written
             datetime(2026, 12, 1, 11, 4, 5, 7, tzinfo=plus8)]

    def work(conn: sa.Connection) -> list:
        out = []
        for i, when in enumerate(cases):
            _FAST_INSERT.scalar(conn, {"key": f"dt{i}", "src": f"dt{i}", "raw": b"", "at": when})
            stored = conn.execute(sa.select(mo.c.received_at).where(
                mo.c.source_addr == f"dt{i}")).scalar_one()
            raw = None
            if conn.dialect.name == "sqlite":  # the text on disk, as the chain wrote it
                raw = conn.exec_driver_sql(
                    "SELECT received_at FROM inbound_messages WHERE source_addr = ?",
                    (f"dt{i}",)).scalar_one()
            out.append((stored, raw))
        return out

    rows = await store.write(work)
    for when, (stored, raw) in zip(cases, rows, strict=True):
        assert stored == when and stored.utcoffset() == timedelta(0)
        if raw is not None:
            assert raw == when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        await store.write(lambda c: _FAST_INSERT.scalar(
            c, {"key": "naive", "src": "n", "raw": b"", "at": datetime(2026, 12, 1)}))
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        await store.write(lambda c: c.execute(sa.update(mo).values(
            received_at=datetime(2026, 12, 1))))
