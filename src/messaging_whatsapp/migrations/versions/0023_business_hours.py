"""Business hours: tenants.business_hours (JSON of weekday -> intervals) and tenants.away_message;
tickets.wants_person_at (the customer asked for a person).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("business_hours", sa.Text(), nullable=True))
    op.add_column("tenants", sa.Column("away_message", sa.Text(), nullable=True))
    op.add_column(
        "tickets",
        sa.Column("wants_person_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("wants_person_at")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("away_message")
        batch.drop_column("business_hours")
