"""whatsapp_instances.health_recovered_at, campaigns.waiting_reason and waiting_message

A number's score recovers a point per hour without failures: health_recovered_at is when it last
did, so the scheduler's pass gives that point once an hour however often it runs. A running
campaign that sends nothing says why: the code and the text of the limit that holds it back.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import messaging_whatsapp.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("whatsapp_instances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("health_recovered_at", messaging_whatsapp.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiting_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("waiting_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("waiting_message")
        batch_op.drop_column("waiting_reason")
    with op.batch_alter_table("whatsapp_instances", schema=None) as batch_op:
        batch_op.drop_column("health_recovered_at")
