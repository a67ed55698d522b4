"""MO dispositions and redelivery identity (issue 8).

Revision ID: 0008_mo_identity
Revises: 0007_phones
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0008_mo_identity"
down_revision: str | None = "0007_phones"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the issue-8 change that owns it


def downgrade() -> None:
    pass
