"""campaign_messages.template: a variation sent as an approved template; messages.follows_message_id:
a long text's later parts wait for the part before them

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without constraints: a plain ALTER TABLE ADD COLUMN on both databases.
    op.add_column("campaign_messages", sa.Column("template", sa.JSON(), nullable=True))
    op.add_column("messages", sa.Column("follows_message_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("follows_message_id")
    with op.batch_alter_table("campaign_messages", schema=None) as batch_op:
        batch_op.drop_column("template")
