"""Tables of the SMPP server side (migrations 0006, 0009): upstream applications, what we owe
them, and the parts of their concatenated submits while they wait for their siblings.

Kept beside store/models.py on the same metadata; store/models.py imports this module at its
end so every table is known to migrations' model comparison and to create_all.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from store.models import BigId, UTCDateTime, _in, metadata

upstream_accounts = Table(
    "upstream_accounts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("system_id", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),  # scrypt, never the password
    # Comma-separated source address prefixes it may send from; empty means any.
    Column("allowed_sources", Text, nullable=False, server_default=""),
    Column("tps", Float, nullable=False, server_default="0"),  # 0 = no limit
    Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("system_id"),
)

# Receipts owed to an application, delivered in order when it is bound (store and forward).
upstream_outbox = Table(
    "upstream_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("system_id", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    # The MT a receipt is for (NULL: a concatenated submit that never completed).
    Column("message_id", BigId, nullable=True),
    # The message_id the application got in its submit_sm_resp: the MT's id, or one part's
    # id of a concatenated submit. One receipt per id it got, however many parts reported.
    Column("receipt_for", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("attempts", sa.Integer, nullable=False, server_default="0"),
    UniqueConstraint("receipt_for"),
    Index(None, "message_id"),
    Index(None, "system_id", "delivered_at", "id"),
)

CONCAT_STATUSES = ("open", "joined", "expired")

# A concatenated submit (UDH or sar_* TLVs) being collected: parts are stored as they are
# accepted, before their submit_sm_resp, and joined into one MT when the last one arrives.
upstream_concat_groups = Table(
    "upstream_concat_groups",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("system_id", String(16), nullable=False),
    Column("source_addr", String(64), nullable=False),
    Column("dest_addr", String(64), nullable=False),
    Column("ref", Integer, nullable=False),
    Column("total", SmallInteger, nullable=False),
    # "system_id|source|dest|ref|total" while collecting, NULL once joined or expired: unique,
    # so one reference has one open group (NULLs never collide), and a finished message frees
    # its reference for the application's next one.
    Column("open_key", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    # Queue settings, from the part that opened the group.
    Column("priority", SmallInteger, nullable=False),
    Column("schedule_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("message_id", BigId, nullable=True),  # the joined MT
    Column("created_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    UniqueConstraint("open_key"),
    Index(None, "message_id"),
    Index(None, "status", "created_at"),
    sa.CheckConstraint(_in("status", CONCAT_STATUSES), name="status"),
)

upstream_concat_parts = Table(
    "upstream_concat_parts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", BigId, ForeignKey("upstream_concat_groups.id"), nullable=False),
    Column("seq", SmallInteger, nullable=False),
    Column("data_coding", SmallInteger, nullable=False),
    # User data without the UDH: joined as bytes before decoding, so a character split
    # across two parts (GSM escape, UTF-16 surrogate pair) comes out whole.
    Column("payload", LargeBinary, nullable=False),
    Column("text", Text, nullable=False),  # this part decoded alone: receipts, logs
    Column("registered_delivery", sa.Boolean, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("group_id", "seq"),
)
