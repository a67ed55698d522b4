"""Asynchronous failures readable through the API: a broadcast's error, an event's notices.

Revision ID: 0010_async_errors
Revises: 0009_upstream_concat
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010_async_errors"
down_revision: str | None = "0009_upstream_concat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why a broadcast that was accepted could not run (shown by GET /broadcasts/{id}).
    op.add_column("broadcasts", sa.Column("error", sa.Text(), nullable=True))
    # The MT ids an event's notices were queued as (JSON list), for GET /events/{id}.
    op.add_column("events", sa.Column("notice_ids", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("notice_ids")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("error")
