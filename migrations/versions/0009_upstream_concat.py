"""SMPP server: durable parts of concatenated submits (issue 8).

Revision ID: 0009_upstream_concat
Revises: 0008_mo_identity
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0009_upstream_concat"
down_revision: str | None = "0008_mo_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the issue-8 change that owns it


def downgrade() -> None:
    pass
