"""Idempotency keys, masked secrets, receipt deadlines (issue 9).

- idempotency_keys: the first answer to a `POST /messages` (or bulk) sent with an
  Idempotency-Key, per API key, until it expires.
- outbound_parts.queried_at: when a part past its receipt deadline was followed up with
  query_sm (the final `unknown` comes a grace time later).
- outbound_messages.status may be `unknown`: no receipt, and query_sm did not tell.

Masked secrets need no schema: the MO row's text is rewritten when it is processed.

Revision ID: 0012_idempotency
Revises: 0011_multi_instance
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012_idempotency"
down_revision: str | None = "0011_multi_instance"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
_OLD = ("queued", "sending", "submitted", "delivered", "failed", "expired", "rejected",
        "cancelled")
_NEW = (*_OLD, "unknown")


def _status_check(statuses: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    with op.batch_alter_table("outbound_parts") as batch:
        batch.add_column(sa.Column("queried_at", TS, nullable=True))
        batch.create_index("ix_outbound_parts_status_submitted_at", ["status", "submitted_at"])
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_constraint("ck_outbound_messages_status", type_="check")
        batch.create_check_constraint("status", _status_check(_NEW))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_constraint("ck_outbound_messages_status", type_="check")
        batch.create_check_constraint("status", _status_check(_OLD))
    with op.batch_alter_table("outbound_parts") as batch:
        batch.drop_index("ix_outbound_parts_status_submitted_at")
        batch.drop_column("queried_at")
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
