"""Operator console users and sessions (issue 11).

Revision ID: 0013_console_users
Revises: 0012_idempotency
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0013_console_users"
down_revision: str | None = "0012_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the change that owns it


def downgrade() -> None:
    pass
