"""Operator console users and sessions (issue 11).

Revision ID: 0013_console_users
Revises: 0012_idempotency
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013_console_users"
down_revision: str | None = "0012_idempotency"
branch_labels = None
depends_on = None


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("password_changed_at", TS, nullable=True),
        sa.Column("last_login_at", TS, nullable=True),
        sa.Column("disabled_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_console_users"),
        sa.UniqueConstraint("username", name="uq_console_users_username"),
        sa.CheckConstraint("role IN ('admin', 'operator', 'viewer')",
                           name="ck_console_users_role"),
        sa.CheckConstraint("lang IN ('zh', 'en')", name="ck_console_users_lang"),
    )


def downgrade() -> None:
    op.drop_table("console_users")
