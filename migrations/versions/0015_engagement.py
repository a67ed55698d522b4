"""Campaigns, polls and surveys (issue 13).

Revision ID: 0015_engagement
Revises: 0014_pins_hmac
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0015_engagement"
down_revision: str | None = "0014_pins_hmac"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the change that owns it


def downgrade() -> None:
    pass
