"""Indexes for lookups that scanned a growing table per message (issue 10: the soak).

Revision ID: 0019_scan_free_indexes
Revises: 0018_template_overrides
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0019_scan_free_indexes"
down_revision: str | None = "0018_template_overrides"
branch_labels = None
depends_on = None

# Masking a PIN in an MO also masks it in the MO's stored redeliveries (duplicate_of = id).
# Without an index that was a scan of every MO ever received, once per PIN-bearing message:
# the gateway's CPU per message grew with the table (a soak at 100 MO/s went from 44 % to
# 77 % of a core in 13 minutes). Partial: only redeliveries have the column set.
DUPLICATE_OF = "ix_inbound_messages_duplicate_of"
# A sender's groups (rules may be scoped to a group) are read for every MO: by account_id,
# which the (group_id, account_id) unique constraint cannot serve.
MEMBER_ACCOUNT = "ix_group_members_account_id"


def upgrade() -> None:
    op.create_index(DUPLICATE_OF, "inbound_messages", ["duplicate_of"],
                    sqlite_where=sa.text("duplicate_of IS NOT NULL"),
                    postgresql_where=sa.text("duplicate_of IS NOT NULL"))
    op.create_index(MEMBER_ACCOUNT, "group_members", ["account_id"])


def downgrade() -> None:
    op.drop_index(MEMBER_ACCOUNT, table_name="group_members")
    op.drop_index(DUPLICATE_OF, table_name="inbound_messages")
