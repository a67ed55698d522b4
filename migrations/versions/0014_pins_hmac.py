"""PIN hashes: keyed HMAC, re-hashed at the next successful check (issue 10).

Revision ID: 0014_pins_hmac
Revises: 0013_console_users
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0014_pins_hmac"
down_revision: str | None = "0013_console_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in by the change that owns it


def downgrade() -> None:
    pass
