"""Admin API: hashed API keys with roles, and the audit log of changes.

Revision ID: 0005_admin
Revises: 0004_outbound
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_admin"
down_revision: str | None = "0004_outbound"
branch_labels = None
depends_on = None

# Written out rather than imported from store.models (see 0001).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        sa.CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="ck_api_keys_role"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("key_id", BigId, nullable=True),
        sa.Column("key_name", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("resource", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_resource_resource_id", "audit_log",
                    ["resource", "resource_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_resource_resource_id", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
