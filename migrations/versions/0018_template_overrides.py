"""Reply template overrides edited by operators (issue 11).

Revision ID: 0018_template_overrides
Revises: 0017_hot_path
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0018_template_overrides"
down_revision: str | None = "0017_hot_path"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the change that owns it


def downgrade() -> None:
    pass
