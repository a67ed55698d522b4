"""Several instances on one database: shared guard state, leases (issue 9).

Revision ID: 0011_multi_instance
Revises: 0010_async_errors
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0011_multi_instance"
down_revision: str | None = "0010_async_errors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the change that owns it


def downgrade() -> None:
    pass
