"""Reply template overrides edited by operators (issue 11), and the service number a
broadcast goes out from (issue 12).

Revision ID: 0018_template_overrides
Revises: 0017_hot_path
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0018_template_overrides"
down_revision: str | None = "0017_hot_path"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An override replaces the YAML default of one (lang, key); deleting it is the reset.
    op.create_table(
        "template_overrides",
        sa.Column("lang", sa.String(8), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=True),
    )
    # None: the gateway's default number (SMSGW_SOURCE_ADDR).
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("service_number", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("service_number")
    op.drop_table("template_overrides")
