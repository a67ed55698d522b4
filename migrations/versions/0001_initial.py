"""Initial schema: inbound/outbound messages, parts, events, pending receipts.

Revision ID: 0001
Revises:
Create Date: 2025-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from store.models: a migration must keep describing the
# schema as it was at this revision, whatever the models become later.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("source_addr", sa.String(64), nullable=False),
        sa.Column("dest_addr", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data_coding", sa.Integer(), nullable=False),
        sa.Column("esm_class", sa.Integer(), nullable=False),
        sa.Column("short_message", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="received"),
        sa.Column("processed_at", TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("command", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_messages"),
        sa.UniqueConstraint(
            "connection", "dedup_key", name="uq_inbound_messages_connection_dedup_key"
        ),
        sa.CheckConstraint(
            "status IN ('received', 'processed', 'failed')", name="ck_inbound_messages_status"
        ),
    )
    op.create_index("ix_inbound_messages_status_id", "inbound_messages", ["status", "id"])

    op.create_table(
        "outbound_messages",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("source_addr", sa.String(64), nullable=True),
        sa.Column("dest_addr", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("schedule_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("in_reply_to", BigId, nullable=True),
        sa.Column("connection", sa.String(64), nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("possibly_duplicate", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("registered_delivery", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.PrimaryKeyConstraint("id", name="pk_outbound_messages"),
        sa.ForeignKeyConstraint(
            ["in_reply_to"],
            ["inbound_messages.id"],
            name="fk_outbound_messages_in_reply_to_inbound_messages",
        ),
        sa.CheckConstraint("priority BETWEEN 0 AND 3", name="ck_outbound_messages_priority"),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'submitted', 'delivered', 'failed', 'expired',"
            " 'rejected', 'cancelled')",
            name="ck_outbound_messages_status",
        ),
    )
    op.create_index(
        "ix_outbound_messages_claim",
        "outbound_messages",
        ["status", "priority", "schedule_at", "id"],
    )
    op.create_index(
        "ix_outbound_messages_claimed_by_status", "outbound_messages", ["claimed_by", "status"]
    )

    op.create_table(
        "outbound_parts",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("message_id", BigId, nullable=False),
        sa.Column("part_no", sa.Integer(), nullable=False),
        sa.Column("smsc_message_id", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("submitted_at", TS, nullable=True),
        sa.Column("done_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbound_parts"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbound_messages.id"],
            name="fk_outbound_parts_message_id_outbound_messages",
        ),
        sa.UniqueConstraint("message_id", "part_no", name="uq_outbound_parts_message_id_part_no"),
        sa.CheckConstraint(
            "status IN ('submitted', 'delivered', 'failed', 'expired', 'rejected', 'unknown')",
            name="ck_outbound_parts_status",
        ),
    )
    op.create_index("ix_outbound_parts_smsc_message_id", "outbound_parts", ["smsc_message_id"])

    op.create_table(
        "message_events",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_message_events"),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_message_events_direction"),
    )
    op.create_index(
        "ix_message_events_direction_message_id_id",
        "message_events",
        ["direction", "message_id", "id"],
    )

    op.create_table(
        "pending_receipts",
        sa.Column("id", BigId, nullable=False, autoincrement=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("smsc_message_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pending_receipts"),
    )
    op.create_index("ix_pending_receipts_smsc_message_id", "pending_receipts", ["smsc_message_id"])


def downgrade() -> None:
    op.drop_table("pending_receipts")
    op.drop_table("message_events")
    op.drop_table("outbound_parts")
    op.drop_table("outbound_messages")
    op.drop_table("inbound_messages")
