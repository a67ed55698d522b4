"""Webhook outbox, HTTP connectors, service numbers (issue 12).

- webhook_subscriptions: the targets (URL, per-target secret, events, form, limits);
- webhook_deliveries: the durable outbox, one row per callback owed, written in the
  transaction of what caused it (gateway/webhooks/, store/webhooks.py);
- outbound_messages.callback_url, api_keys.callback_url: where a message's final state goes;
- rules: the 'webhook' action and an optional service number a rule is limited to.

Revision ID: 0016_integration
Revises: 0015_engagement
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0016_integration"
down_revision: str | None = "0015_engagement"
branch_labels = None
depends_on = None

UTCDateTime = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OLD_ACTIONS = "action IN ('command', 'reply', 'tag', 'forward')"
_NEW_ACTIONS = "action IN ('command', 'reply', 'tag', 'forward', 'webhook')"


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("events", sa.Text, nullable=False, server_default="*"),
        sa.Column("form", sa.String(8), nullable=False, server_default="json"),
        sa.Column("reply", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("max_concurrency", sa.Integer, nullable=False, server_default="4"),
        sa.Column("timeout", sa.Float, nullable=False, server_default="10"),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_subscriptions"),
        sa.UniqueConstraint("name", name="uq_webhook_subscriptions_name"),
        sa.CheckConstraint("form IN ('json', 'get')", name="ck_webhook_subscriptions_form"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("subscription_id", BigId, nullable=True),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("form", sa.String(8), nullable=False, server_default="json"),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("mo_id", BigId, nullable=True),
        sa.Column("reply_from", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("reply_mt_id", BigId, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint("idempotency_key", name="uq_webhook_deliveries_idempotency_key"),
        sa.CheckConstraint("status IN ('pending', 'delivering', 'delivered', 'dead')",
                           name="ck_webhook_deliveries_status"),
    )
    op.create_index("ix_webhook_deliveries_status_next_attempt_at", "webhook_deliveries",
                    ["status", "next_attempt_at"])
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("callback_url", sa.String(1024), nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("callback_url", sa.String(1024), nullable=True))
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("service_number", sa.String(32), nullable=True))
        batch.drop_constraint("ck_rules_action", type_="check")
        batch.create_check_constraint("ck_rules_action", sa.text(_NEW_ACTIONS))


def downgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.drop_constraint("ck_rules_action", type_="check")
        batch.create_check_constraint("ck_rules_action", sa.text(_OLD_ACTIONS))
        batch.drop_column("service_number")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("callback_url")
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("callback_url")
    op.drop_index("ix_webhook_deliveries_status_next_attempt_at", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_subscriptions")
