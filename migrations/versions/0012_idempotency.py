"""Idempotency keys, masked secrets, receipt deadlines (issue 9).

Revision ID: 0012_idempotency
Revises: 0011_multi_instance
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0012_idempotency"
down_revision: str | None = "0011_multi_instance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the change that owns it


def downgrade() -> None:
    pass
