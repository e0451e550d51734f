"""an index for the campaigns changed in the last seconds (live progress)

Every dispatcher asks for them twice a second. Without an index that scans every campaign ever
run, which grow without end while the ones asked for stay few.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 05:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_updated_at", ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_updated_at")
