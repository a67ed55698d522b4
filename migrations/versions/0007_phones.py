"""One phone-number form: existing numbers rewritten to E.164 digits (issue 8).

Every column that holds a subscriber's or handset's number is rewritten by the one normaliser,
common.phones.canonical (``+86 138-0000-0001`` → ``8613800000001``; national numbers are read
in the country of SMSGW_DEFAULT_COUNTRY of the process that runs the migration, default 86):

    accounts.phone, subscriptions.phone, opt_outs.phone, phone_tags.phone,
    phone_changes.new_phone, inbound_messages.source_addr, outbound_messages.dest_addr,
    and the numbers of list broadcasts (broadcasts.target).

Short codes and alphanumeric addresses (our own source_addr, inbound dest_addr, upstream
allowed_sources) are not subscriber numbers and are left alone.

Rows that collapse onto one number under a unique constraint (two accounts ``+8613800000001``
and ``8613800000001``; one phone subscribed to a topic in two forms) lose no data silently:
the row already in the canonical form is kept (else the oldest, lowest id); every other one is
copied whole (JSON) into the new table ``phone_conflicts`` with the row it collided with, and
logged as a WARNING. A colliding account is kept but unbound (phone NULL: it can REG again or
an operator sets its number); a colliding subscription, opt-out or tag is removed, since the
kept row says the same. A value that is no phone number at all is left as it was and recorded
as ``unparsable``. Downgrade drops the table and leaves the numbers canonical (the old forms
cannot be told back apart).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from common.phones import canonical_or_none

revision: str = "0007_phones"
down_revision: str | None = "0006_upstream"
branch_labels = None
depends_on = None

log = logging.getLogger("smsgw.migrations")

BATCH = 5000
# table, phone column, the other columns of its unique constraint (None: no constraint).
UNIQUE_PHONES: list[tuple[str, str, tuple[str, ...]]] = [
    ("accounts", "phone", ()),
    ("subscriptions", "phone", ("topic_id",)),
    ("opt_outs", "phone", ()),
    ("phone_tags", "phone", ("tag",)),
]
PLAIN_PHONES = [
    ("phone_changes", "new_phone"),
    ("inbound_messages", "source_addr"),
    ("outbound_messages", "dest_addr"),
]


def upgrade() -> None:
    op.create_table(
        "phone_conflicts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("column_name", sa.String(length=64), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("old_value", sa.String(length=64), nullable=False),
        sa.Column("canonical", sa.String(length=32), nullable=True),
        sa.Column("kept_row_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_conflicts")),
    )
    conn = op.get_bind()
    meta = sa.MetaData()
    conflicts = sa.Table("phone_conflicts", meta, autoload_with=conn)
    at = datetime.now(UTC)
    if conn.dialect.name == "sqlite":
        at = at.replace(tzinfo=None)  # store.models.UTCDateTime: naive UTC text on SQLite
    for name, column, keys in UNIQUE_PHONES:
        table = sa.Table(name, meta, autoload_with=conn)
        _rewrite_unique(conn, table, column, keys, conflicts, at)
    for name, column in PLAIN_PHONES:
        _rewrite_plain(conn, sa.Table(name, meta, autoload_with=conn), column, conflicts, at)
    _rewrite_list_broadcasts(conn, sa.Table("broadcasts", meta, autoload_with=conn))


def downgrade() -> None:
    op.drop_table("phone_conflicts")


def _json(row: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, datetime | date):
            return v.isoformat()
        if isinstance(v, bytes):
            return v.hex()
        return v

    return json.dumps({k: plain(v) for k, v in row._mapping.items()}, ensure_ascii=False)


def _record(conn: sa.Connection, conflicts: sa.Table, at: datetime, table: sa.Table,
            column: str, row: Any, canonical: str | None, kept: int | None,
            action: str) -> None:
    conn.execute(conflicts.insert().values(
        table_name=table.name, column_name=column, row_id=row.id,
        old_value=str(row._mapping[column])[:64], canonical=canonical, kept_row_id=kept,
        action=action, row=_json(row), at=at))
    log.warning("0007_phones: %s.%s row %s %r → %s: %s%s (see table phone_conflicts)",
                table.name, column, row.id, row._mapping[column], canonical or "no phone",
                action, f", kept row {kept}" if kept is not None else "")


def _rewrite_unique(conn: sa.Connection, table: sa.Table, column: str, keys: tuple[str, ...],
                    conflicts: sa.Table, at: datetime) -> None:
    """Small tables (one row per person): all rows at once, grouped by their final key."""
    col = table.c[column]
    rows = conn.execute(sa.select(table).where(col.is_not(None)).order_by(table.c.id)).all()
    groups: dict[tuple[Any, ...], list[tuple[Any, str]]] = defaultdict(list)
    for row in rows:
        value = row._mapping[column]
        canonical = canonical_or_none(value)
        if canonical is None:
            _record(conn, conflicts, at, table, column, row, None, None, "unparsable")
            continue
        groups[(canonical, *(row._mapping[k] for k in keys))].append((row, value))
    updates = []
    for (canonical, *_), members in groups.items():
        # Already canonical wins; else the oldest row (rows are in id order).
        keeper = next((r for r, v in members if v == canonical), members[0][0])
        for row, _value in members:
            if row is keeper:
                continue
            action = "unbound" if table.name == "accounts" else "removed"
            _record(conn, conflicts, at, table, column, row, canonical, keeper.id, action)
            if action == "unbound":
                conn.execute(table.update().where(table.c.id == row.id).values({column: None}))
            else:
                conn.execute(table.delete().where(table.c.id == row.id))
        if keeper._mapping[column] != canonical:
            updates.append({"_id": keeper.id, "_value": canonical})
    _apply(conn, table, column, updates)


def _rewrite_plain(conn: sa.Connection, table: sa.Table, column: str, conflicts: sa.Table,
                   at: datetime) -> None:
    """Message tables may be large: batches by id, only changed rows written. A value that
    is no phone (an alphanumeric sender) is simply not a subscriber number: left as is."""
    col = table.c[column]
    last = 0
    while True:
        batch = conn.execute(sa.select(table.c.id, col).where(table.c.id > last)
                             .order_by(table.c.id).limit(BATCH)).all()
        if not batch:
            return
        updates = []
        for row_id, value in batch:
            canonical = canonical_or_none(value) if value is not None else None
            if canonical is not None and canonical != value:
                updates.append({"_id": row_id, "_value": canonical})
        _apply(conn, table, column, updates)
        last = batch[-1][0]


def _apply(conn: sa.Connection, table: sa.Table, column: str,
           updates: list[dict[str, Any]]) -> None:
    if updates:
        conn.execute(table.update().where(table.c.id == sa.bindparam("_id"))
                     .values({column: sa.bindparam("_value")}), updates)


def _rewrite_list_broadcasts(conn: sa.Connection, broadcasts: sa.Table) -> None:
    rows = conn.execute(sa.select(broadcasts.c.id, broadcasts.c.target)
                        .where(broadcasts.c.target_kind == "list")).all()
    for row_id, target in rows:
        try:
            spec = json.loads(target)
            numbers = spec["numbers"]
        except (ValueError, TypeError, KeyError):
            continue  # not the shape store.notices writes; leave it to fail visibly there
        fixed = [canonical_or_none(str(n)) or str(n) for n in numbers]
        if fixed != numbers:
            spec["numbers"] = fixed
            conn.execute(broadcasts.update().where(broadcasts.c.id == row_id)
                         .values(target=json.dumps(spec)))
