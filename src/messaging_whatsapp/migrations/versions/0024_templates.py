"""Templates (WhatsApp message templates stored per tenant, synced from Meta).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 02:10:00
"""

from collections.abc import Sequence

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
