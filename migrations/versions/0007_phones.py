"""One phone-number form: existing numbers rewritten to E.164 digits (issue 8).

Revision ID: 0007_phones
Revises: 0006_upstream
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0007_phones"
down_revision: str | None = "0006_upstream"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the issue-8 change that owns it


def downgrade() -> None:
    pass
