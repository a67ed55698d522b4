"""SMPP server side: upstream application accounts, receipts owed to them, submitter link.

Revision ID: 0006_upstream
Revises: 0005_admin
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_upstream"
down_revision: str | None = "0005_admin"
branch_labels = None
depends_on = None

# Written out rather than imported from store.models (see 0001).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "upstream_accounts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("system_id", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("allowed_sources", sa.Text(), nullable=False, server_default=""),
        sa.Column("tps", sa.Float(), nullable=False, server_default="0"),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_upstream_accounts"),
        sa.UniqueConstraint("system_id", name="uq_upstream_accounts_system_id"),
    )
    op.create_table(
        "upstream_outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("system_id", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message_id", BigId, nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_upstream_outbox"),
        sa.UniqueConstraint("message_id", name="uq_upstream_outbox_message_id"),
    )
    op.create_index("ix_upstream_outbox_system_id_delivered_at_id", "upstream_outbox",
                    ["system_id", "delivered_at", "id"])
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("upstream", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("upstream")
    op.drop_index("ix_upstream_outbox_system_id_delivered_at_id", table_name="upstream_outbox")
    op.drop_table("upstream_outbox")
    op.drop_table("upstream_accounts")
