"""Several instances on one database: shared guard state, leases (issue 9).

Revision ID: 0011_multi_instance
Revises: 0010_async_errors
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011_multi_instance"
down_revision: str | None = "0010_async_errors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Time-limited ownership of a singleton duty ("instance:<name>" is each instance's
    # heartbeat): a holder that dies stops renewing, and the lease lapses by expiry.
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    # The per-sender rate limit, shared by every instance (commands/guards.py).
    op.create_table(
        "sender_guards",
        sa.Column("phone", sa.String(64), nullable=False),
        sa.Column("accepted", sa.Text(), nullable=False, server_default=""),
        sa.Column("notified_at", sa.Float(), nullable=True),
        sa.Column("opt_out_notified_at", sa.Float(), nullable=True),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("phone", name="pk_sender_guards"),
    )
    op.create_index("ix_sender_guards_seen_at", "sender_guards", ["seen_at"])
    # The reply-storm guard: when an error reply last went for (phone, MO text, reply).
    op.create_table(
        "reply_guards",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("allowed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_reply_guards"),
    )
    op.create_index("ix_reply_guards_allowed_at", "reply_guards", ["allowed_at"])
    # A long MO's parts found by whichever instance stores the last one.
    op.create_index("ix_inbound_messages_source_addr_concat_ref", "inbound_messages",
                    ["source_addr", "concat_ref"])


def downgrade() -> None:
    op.drop_index("ix_inbound_messages_source_addr_concat_ref", "inbound_messages")
    op.drop_index("ix_reply_guards_allowed_at", "reply_guards")
    op.drop_table("reply_guards")
    op.drop_index("ix_sender_guards_seen_at", "sender_guards")
    op.drop_table("sender_guards")
    op.drop_table("leases")
