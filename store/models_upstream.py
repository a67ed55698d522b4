"""Tables of the SMPP server side (migration 0006): upstream applications and what we owe them.

Kept beside store/models.py on the same metadata; store/models.py imports this module at its
end so every table is known to migrations' model comparison and to create_all.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Column, Float, Index, String, Table, Text, UniqueConstraint

from store.models import BigId, UTCDateTime, metadata

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
    # The MT a receipt is for: one receipt per message, however many parts reported.
    Column("message_id", BigId, nullable=True),
    Column("payload", Text, nullable=False),  # JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("attempts", sa.Integer, nullable=False, server_default="0"),
    UniqueConstraint("message_id"),
    Index(None, "system_id", "delivered_at", "id"),
)
