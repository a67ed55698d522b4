"""Concatenation info on inbound messages: parts wait for their siblings across restarts.

Revision ID: 0003_concat
Revises: 0002_domain
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_concat"
down_revision: str | None = "0002_domain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(sa.Column("concat_ref", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("concat_total", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("concat_seq", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("concat_seq")
        batch.drop_column("concat_total")
        batch.drop_column("concat_ref")
