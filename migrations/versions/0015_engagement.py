"""Campaigns, polls and surveys (issue 13): engagements, per-phone sessions, routed replies.

Revision ID: 0015_engagement
Revises: 0014_pins_hmac
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015_engagement"
down_revision: str | None = "0014_pins_hmac"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "engagements",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("keyword", sa.String(32), nullable=False),
        sa.Column("open_to_all", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("goal", sa.Text, nullable=True),
        sa.Column("lang", sa.String(2), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("target_kind", sa.String(16), nullable=True),
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("broadcast_id", BigId, nullable=True),
        sa.Column("reply_window_minutes", sa.Integer, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("closes_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_engagements"),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"],
                                name="fk_engagements_broadcast_id_broadcasts"),
        sa.UniqueConstraint("keyword", name="uq_engagements_keyword"),
        sa.CheckConstraint("kind IN ('campaign', 'poll', 'survey')",
                           name="ck_engagements_kind"),
        sa.CheckConstraint("status IN ('draft', 'running', 'paused', 'closed')",
                           name="ck_engagements_status"),
    )
    op.create_table(
        "engagement_sessions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("engagement_id", BigId, nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer, nullable=False, server_default="0"),
        sa.Column("choice", sa.Integer, nullable=True),
        sa.Column("answers", sa.Text, nullable=False, server_default="{}"),
        sa.Column("lang", sa.String(2), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_engagement_sessions"),
        sa.ForeignKeyConstraint(["engagement_id"], ["engagements.id"],
                                name="fk_engagement_sessions_engagement_id_engagements"),
        sa.UniqueConstraint("engagement_id", "phone",
                            name="uq_engagement_sessions_engagement_id_phone"),
        sa.CheckConstraint("status IN ('open', 'done', 'timed_out', 'closed')",
                           name="ck_engagement_sessions_status"),
    )
    op.create_index("ix_engagement_sessions_phone_status", "engagement_sessions",
                    ["phone", "status"])
    op.create_table(
        "engagement_replies",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("engagement_id", BigId, nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("mo_id", BigId, nullable=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("accepted", sa.Boolean, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_engagement_replies"),
        sa.ForeignKeyConstraint(["engagement_id"], ["engagements.id"],
                                name="fk_engagement_replies_engagement_id_engagements"),
        sa.ForeignKeyConstraint(["mo_id"], ["inbound_messages.id"],
                                name="fk_engagement_replies_mo_id_inbound_messages"),
    )
    op.create_index("ix_engagement_replies_engagement_id_at", "engagement_replies",
                    ["engagement_id", "at"])


def downgrade() -> None:
    op.drop_table("engagement_replies")
    op.drop_table("engagement_sessions")
    op.drop_table("engagements")
