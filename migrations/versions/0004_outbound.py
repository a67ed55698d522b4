"""Outbound engine: per-message cost and broadcast link, broadcasts, scheduled job runs,
durable events, and recipients' daily notification windows.

Revision ID: 0004_outbound
Revises: 0003_concat
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_outbound"
down_revision: str | None = "0003_concat"
branch_labels = None
depends_on = None

# Written out rather than imported from store.models (see 0001).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("schedule_at", TS, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("queued", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_broadcasts"),
        sa.CheckConstraint(
            "status IN ('scheduled', 'running', 'done', 'cancelled')",
            name="ck_broadcasts_status"),
        sa.CheckConstraint(
            "target_kind IN ('group', 'segment', 'topic', 'list')",
            name="ck_broadcasts_target_kind"),
    )
    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("last_slot", sa.String(length=64), nullable=False),
        sa.Column("last_run_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("job", name="pk_job_runs"),
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("processed_at", TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_processed_at_id", "events", ["processed_at", "id"])
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("cost_millis", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("broadcast_id", BigId, nullable=True))
        batch.create_index("ix_outbound_messages_broadcast_id", ["broadcast_id"])
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("notify_window_start", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("notify_window_end", sa.String(length=5), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("notify_window_end")
        batch.drop_column("notify_window_start")
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_index("ix_outbound_messages_broadcast_id")
        batch.drop_column("broadcast_id")
        batch.drop_column("cost_millis")
    op.drop_index("ix_events_processed_at_id", table_name="events")
    op.drop_table("events")
    op.drop_table("job_runs")
    op.drop_table("broadcasts")
