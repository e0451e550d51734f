"""tenants.default_country: the country a typed phone without "+" is read in (ISO 3166 alpha-2)

"(11) 98765-4321" is a number of Brazil for a Brazilian business and not a number at all for an
American one; every tenant so far was Brazilian, so existing rows get "BR".

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("default_country", sa.String(length=2), server_default="BR", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("default_country")
