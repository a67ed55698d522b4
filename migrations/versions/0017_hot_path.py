"""Hot-path schema changes (issue 10).

Revision ID: 0017_hot_path
Revises: 0016_integration
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0017_hot_path"
down_revision: str | None = "0016_integration"
branch_labels = None
depends_on = None


# The claim orders queued rows by (priority, coalesce(schedule_at, created_at), id): without
# an index in that order every claim sorted every queued row of the top priority (a claim
# cost grew with the queue: the 1,000,000-message drain). Expiry looks for queued rows past
# expires_at: without (status, expires_at) every claim scanned the whole queue for them.
DUE = "ix_outbound_messages_due"
EXPIRY = "ix_outbound_messages_expiry"


def upgrade() -> None:
    op.create_index(DUE, "outbound_messages",
                    ["status", "priority", sa.text("coalesce(schedule_at, created_at)"), "id"])
    op.create_index(EXPIRY, "outbound_messages", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index(EXPIRY, table_name="outbound_messages")
    op.drop_index(DUE, table_name="outbound_messages")
