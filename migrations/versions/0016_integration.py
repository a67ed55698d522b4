"""Webhook outbox, HTTP connectors, service numbers (issue 12).

Revision ID: 0016_integration
Revises: 0015_engagement
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0016_integration"
down_revision: str | None = "0015_engagement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the change that owns it


def downgrade() -> None:
    pass
