"""tenants.retention_*_days: data retention (LGPD) per tenant, in days (null: kept forever)

Messages, closed tickets and the raw webhook requests in the DLQ each get a retention period; the
scheduler deletes what is older. Deleting a ticket sets its messages' ticket_id to NULL, which
looks them up by ticket_id: the new index keeps that from scanning every message.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETTINGS = ["retention_messages_days", "retention_closed_tickets_days", "retention_raw_requests_days"]
INDEX = "ix_messages_ticket_id"
PREDICATE = "ticket_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        for setting in SETTINGS:
            batch_op.add_column(sa.Column(setting, sa.Integer(), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            INDEX,
            ["ticket_id"],
            unique=False,
            sqlite_where=sa.text(PREDICATE),
            postgresql_where=sa.text(PREDICATE),
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        for setting in reversed(SETTINGS):
            batch_op.drop_column(setting)
