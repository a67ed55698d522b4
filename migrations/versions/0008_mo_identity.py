"""MO dispositions and redelivery identity (issue 8).

Every MO gets a recorded disposition (store.models.MO_DISPOSITIONS), and the columns that
tell an SMSC redelivery from a person's repeat (gateway/inbound.py): a content digest, the
original a redelivery repeats, the session that acknowledged it and whether that ack is
known to have reached the SMSC.

Rows stored before this revision keep content_key NULL: they are never taken as the
predecessor of a new MO (their time-bucket keys cannot be compared with the new identity).
Failed rows get the 'failed' disposition; other old rows keep NULL ("before dispositions").

Revision ID: 0008_mo_identity
Revises: 0007_phones
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_mo_identity"
down_revision: str | None = "0007_phones"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# A copy, not an import: a migration must keep meaning what it meant when it was written.
DISPOSITIONS = (
    "answered", "no_reply", "forwarded", "replayed_duplicate", "duplicate_no_reply",
    "duplicate_part", "rate_limited_notified", "rate_limited", "opt_out_reply_limited",
    "reply_suppressed", "incomplete", "receipt_without_id", "failed",
)


def upgrade() -> None:
    allowed = ", ".join(f"'{d}'" for d in DISPOSITIONS)
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(sa.Column("content_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("duplicate_of", BigId, nullable=True))
        batch.add_column(sa.Column("ack_session", sa.String(128), nullable=True))
        batch.add_column(sa.Column("ack_confirmed", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("disposition", sa.String(32), nullable=True))
        batch.create_check_constraint(
            "ck_inbound_messages_disposition",
            sa.text(f"disposition IS NULL OR disposition IN ({allowed})"))
        batch.create_index("ix_inbound_messages_content_key_id", ["content_key", "id"])
    op.execute("UPDATE inbound_messages SET disposition = 'failed' WHERE status = 'failed'")


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_index("ix_inbound_messages_content_key_id")
        batch.drop_constraint("ck_inbound_messages_disposition", type_="check")
        batch.drop_column("disposition")
        batch.drop_column("ack_confirmed")
        batch.drop_column("ack_session")
        batch.drop_column("duplicate_of")
        batch.drop_column("content_key")
