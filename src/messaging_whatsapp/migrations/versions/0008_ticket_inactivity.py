"""tenants.ticket_inactivity_minutes: a ticket closes after this long without a message (0: never)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ticket_inactivity_minutes", sa.Integer(), nullable=False, server_default="1440")
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("ticket_inactivity_minutes")
