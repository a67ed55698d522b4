"""Hot-path schema changes (issue 10).

Revision ID: 0017_hot_path
Revises: 0016_integration
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0017_hot_path"
down_revision: str | None = "0016_integration"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the change that owns it


def downgrade() -> None:
    pass
