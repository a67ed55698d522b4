"""SMPP server: durable parts of concatenated submits (issue 8).

Parts of a UDH- or SAR-concatenated submit_sm are stored as they are accepted and joined into
one MT; each part got its own message_id, so receipts owed to an application are now keyed by
the id it got (`receipt_for`), not by our MT id (several parts share one MT).

Revision ID: 0009_upstream_concat
Revises: 0008_mo_identity
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009_upstream_concat"
down_revision: str | None = "0008_mo_identity"
branch_labels = None
depends_on = None

# Written out rather than imported from store.models (see 0001).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "upstream_concat_groups",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("system_id", sa.String(length=16), nullable=False),
        sa.Column("source_addr", sa.String(length=64), nullable=False),
        sa.Column("dest_addr", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.Integer(), nullable=False),
        sa.Column("total", sa.SmallInteger(), nullable=False),
        sa.Column("open_key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("schedule_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("message_id", BigId, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_upstream_concat_groups"),
        sa.UniqueConstraint("open_key", name="uq_upstream_concat_groups_open_key"),
        sa.CheckConstraint("status IN ('open', 'joined', 'expired')",
                           name="ck_upstream_concat_groups_status"),
    )
    op.create_index("ix_upstream_concat_groups_message_id", "upstream_concat_groups",
                    ["message_id"])
    op.create_index("ix_upstream_concat_groups_status_created_at", "upstream_concat_groups",
                    ["status", "created_at"])
    op.create_table(
        "upstream_concat_parts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("group_id", BigId, nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("data_coding", sa.SmallInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("registered_delivery", sa.Boolean(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_upstream_concat_parts"),
        sa.ForeignKeyConstraint(
            ["group_id"], ["upstream_concat_groups.id"],
            name="fk_upstream_concat_parts_group_id_upstream_concat_groups"),
        sa.UniqueConstraint("group_id", "seq", name="uq_upstream_concat_parts_group_id_seq"),
    )
    # Receipts are owed per id the application got; existing rows were per MT id.
    with op.batch_alter_table("upstream_outbox") as batch:
        batch.add_column(sa.Column("receipt_for", sa.String(length=64), nullable=True))
    op.execute("UPDATE upstream_outbox SET receipt_for = CAST(message_id AS VARCHAR(64))")
    op.execute("UPDATE upstream_outbox SET receipt_for = CAST(id AS VARCHAR(64)) "
               "WHERE receipt_for IS NULL")
    with op.batch_alter_table("upstream_outbox") as batch:
        batch.alter_column("receipt_for", existing_type=sa.String(length=64), nullable=False)
        batch.drop_constraint("uq_upstream_outbox_message_id", type_="unique")
        batch.create_unique_constraint("uq_upstream_outbox_receipt_for", ["receipt_for"])
        batch.create_index("ix_upstream_outbox_message_id", ["message_id"])


def downgrade() -> None:
    with op.batch_alter_table("upstream_outbox") as batch:
        batch.drop_index("ix_upstream_outbox_message_id")
        batch.drop_constraint("uq_upstream_outbox_receipt_for", type_="unique")
        batch.create_unique_constraint("uq_upstream_outbox_message_id", ["message_id"])
        batch.drop_column("receipt_for")
    op.drop_table("upstream_concat_parts")
    op.drop_index("ix_upstream_concat_groups_status_created_at",
                  table_name="upstream_concat_groups")
    op.drop_index("ix_upstream_concat_groups_message_id", table_name="upstream_concat_groups")
    op.drop_table("upstream_concat_groups")
