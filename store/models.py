"""Schema as SQLAlchemy Core tables (the hot paths are Core, not ORM).

Every change here needs a migration in migrations/versions/; tests/store/test_migrations.py
fails when the two drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# 64-bit ids on PostgreSQL; SQLite only autoincrements an "INTEGER PRIMARY KEY" column.
BigId = BigInteger().with_variant(Integer(), "sqlite")

INBOUND_STATUSES = ("received", "processed", "failed")
OUTBOUND_STATUSES = (
    "queued",
    "sending",
    "submitted",
    "delivered",
    "failed",
    "expired",
    "rejected",
    "cancelled",
)
# Statuses after which nothing changes any more (receipts may still refine a part).
OUTBOUND_FINAL = frozenset({"delivered", "failed", "expired", "rejected", "cancelled"})
PART_STATUSES = ("submitted", "delivered", "failed", "expired", "rejected", "unknown")

PRIORITY_ALERT = 0
PRIORITY_REPLY = 1
PRIORITY_TRANSACTIONAL = 2
PRIORITY_BULK = 3


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the backend stores.

    PostgreSQL keeps timestamptz; SQLite has no time zones, so the value is stored as naive
    UTC text (which also sorts correctly) and made aware again on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # Naive times are ambiguous; refusing them catches clock bugs early.
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("connection", String(64), nullable=False),
    # SMSC message id (receipted_message_id / message_id TLV) or a PDU identity.
    Column("dedup_key", String(255), nullable=False),
    Column("source_addr", String(64), nullable=False),
    Column("dest_addr", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("data_coding", Integer, nullable=False),
    Column("esm_class", Integer, nullable=False),
    Column("short_message", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False, server_default="received"),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("error", Text, nullable=True),
    Column("command", String(64), nullable=True),
    UniqueConstraint("connection", "dedup_key"),
    CheckConstraint(_in("status", INBOUND_STATUSES), name="status"),
    # unprocessed_mos(): status='received' oldest first.
    Index(None, "status", "id"),
)

outbound_messages = Table(
    "outbound_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("priority", SmallInteger, nullable=False),
    Column("source_addr", String(64), nullable=True),
    Column("dest_addr", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default="queued"),
    Column("schedule_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("in_reply_to", BigId, ForeignKey("inbound_messages.id"), nullable=True),
    Column("connection", String(64), nullable=True),
    Column("claimed_by", String(128), nullable=True),
    Column("parts", Integer, nullable=False, server_default="1"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error_code", Integer, nullable=True),
    Column("error_text", Text, nullable=True),
    Column("possibly_duplicate", Boolean, nullable=False, server_default=sa.false()),
    Column("registered_delivery", Boolean, nullable=False, server_default=sa.true()),
    CheckConstraint("priority BETWEEN 0 AND 3", name="priority"),
    CheckConstraint(_in("status", OUTBOUND_STATUSES), name="status"),
    # claim_batch(): WHERE status='queued' ORDER BY priority, schedule..., id.
    Index("ix_outbound_messages_claim", "status", "priority", "schedule_at", "id"),
    # release_claims(): this instance's 'sending' rows.
    Index(None, "claimed_by", "status"),
)

outbound_parts = Table(
    "outbound_parts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("message_id", BigId, ForeignKey("outbound_messages.id"), nullable=False),
    Column("part_no", Integer, nullable=False),  # 1-based
    Column("smsc_message_id", String(128), nullable=True, index=True),  # normalised
    Column("status", String(16), nullable=False),
    Column("error_code", Integer, nullable=True),
    Column("submitted_at", UTCDateTime, nullable=True),
    Column("done_at", UTCDateTime, nullable=True),
    UniqueConstraint("message_id", "part_no"),
    CheckConstraint(_in("status", PART_STATUSES), name="status"),
)

message_events = Table(
    "message_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("direction", String(3), nullable=False),
    # No FK: the same table records inbound and outbound histories.
    Column("message_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("detail", Text, nullable=True),
    CheckConstraint("direction IN ('in', 'out')", name="direction"),
    Index(None, "direction", "message_id", "id"),
)

pending_receipts = Table(
    "pending_receipts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("connection", String(64), nullable=False),
    Column("smsc_message_id", String(128), nullable=False, index=True),  # normalised
    Column("state", String(16), nullable=False),
    Column("error_code", Integer, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("raw", Text, nullable=False),
)
